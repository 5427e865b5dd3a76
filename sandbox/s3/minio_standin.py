"""A stand-in for the MinIO server, for machines where the MinIO image cannot be pulled.

``python -m sandbox.s3.minio_standin server /data --address 127.0.0.1:9000 [--console-address ...]``
takes MinIO's command line and root credentials (``MINIO_ROOT_USER`` / ``MINIO_ROOT_PASSWORD``) and
serves the sandbox's own S3 endpoint (:mod:`sandbox.s3.server`: moto, persisted to the data folder,
requests signed with those keys) with MinIO's health routes. It is what the stand-in image
``gdc-sandbox-standin/minio`` runs (:mod:`sandbox.standins`); it is not MinIO.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

HEALTH_ROUTES = ("/minio/health/live", "/minio/health/ready")


class MinioHealth:
    """WSGI middleware answering MinIO's liveness and readiness probes with 200."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in HEALTH_ROUTES:
            start_response("200 OK", [("Content-Length", "0"), ("Server", "gdc-sandbox MinIO stand-in")])
            return [b""]
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minio (gdc-sandbox stand-in)")
    parser.add_argument("command", choices=["server"])
    parser.add_argument("data_dir")
    parser.add_argument("--address", default=":9000")
    parser.add_argument("--console-address", default="", help="accepted; the stand-in has no console")
    args = parser.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    user, password = os.environ.get("MINIO_ROOT_USER"), os.environ.get("MINIO_ROOT_PASSWORD")
    if not user or not password:
        parser.error("set MINIO_ROOT_USER and MINIO_ROOT_PASSWORD")
    from sandbox.s3.server import build_app, configure_logging, serve

    configure_logging()
    app = MinioHealth(build_app(args.data_dir, (user, password)))  # type: ignore[arg-type]
    serve(app, host or "127.0.0.1", int(port), f"gdc-sandbox MinIO stand-in (moto, data in {args.data_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
