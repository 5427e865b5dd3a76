"""Reproduce an artifact in one call: ``gdc-sandbox repro`` and ``gdc-sandbox scenario new`` are front doors to this.

- :mod:`sandbox.repro.archive`: safe extraction of customer archives.
- :mod:`sandbox.repro.source`: a folder, archive, ``.mar`` or ``s3://`` URI made a local version folder.
- :mod:`sandbox.repro.probe`: a first request synthesized from the signature or the handler kind.
- :mod:`sandbox.repro.run`: check, upload, deploy (forced), predict, per image, in a private sandbox.
- :mod:`sandbox.repro.report`: report.md, report.json and the scenario that keeps the case.
- :mod:`sandbox.repro.commands`: ``repro`` and ``new_scenario``, what the CLI calls.

Nothing is imported here, so that ``sandbox.repro.source`` (used by scenario runs) stays cheap to import.
"""
