"""The sandbox's S3 endpoint and its client.

- :mod:`sandbox.s3.server`: ``python -m sandbox.s3.server``, moto over HTTP with the middlewares below.
- :mod:`sandbox.s3.auth`: refuses requests not signed with the project's keys (SigV4/SigV2).
- :mod:`sandbox.s3.persist`: mirrors every write to disk before S3 answers, and restores it at start.
- :mod:`sandbox.s3.request`: what the two middlewares share (raw paths, S3 error answers).
- :mod:`sandbox.s3.client`: the boto3-based client the CLI and the control plane use (:class:`Store`).
"""
