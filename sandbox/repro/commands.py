"""The two things a person asks of :mod:`sandbox.repro`: reproduce an artifact, or start a scenario from it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sandbox.errors import UsageError
from sandbox.repro import report
from sandbox.repro.run import Repro, ReproRequest, reproduce
from sandbox.repro.source import slug

__all__ = ["Repro", "ReproRequest", "new_scenario", "repro"]


def repro(request: ReproRequest) -> Repro:
    """Reproduce and write report.md, report.json, request.json, logs and scenario/ into ``request.out``."""
    result = reproduce(request)
    report.write(result)
    return result


def new_scenario(request: ReproRequest, target: Path | None) -> tuple[Repro, list[Path]]:
    """Run the artifact once and write a scenario expecting what it did, pointing at the artifact in place.

    ``target`` defaults to ``scenarios/NAME.yaml``; ``request.out`` is only a scratch folder here.
    """
    target = target or Path("scenarios") / f"{slug(request.source)}.yaml"
    if target.exists():
        raise UsageError(
            f"{target} already exists", code="scenario.exists", hint="choose another file with --out, or remove it"
        )
    with tempfile.TemporaryDirectory(prefix="gdc-scenario-new-") as scratch:
        request.out = Path(scratch) / "run"
        request.keep_artifact = False
        result = reproduce(request)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = request.source
    in_place = os.path.relpath(Path(source).resolve(), target.parent.resolve())
    result.artifact = source if source.startswith("s3://") else in_place
    return result, report.write_scenario(result, target.parent, target.stem, "gdc-sandbox scenario new")
