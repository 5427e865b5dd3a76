"""The sandbox's S3 endpoint: moto's S3 served over HTTP on loopback.

Run as ``python -m sandbox.s3.server --host 127.0.0.1 --port 9000 [--data-dir DIR] [--require-keys]``.
moto keeps buckets in memory; with ``--data-dir``, :mod:`sandbox.s3.persist` mirrors every write to disk
before the response is sent and restores it at start, so bucket contents survive restarts and ``kill -9``.
With ``--require-keys``, :mod:`sandbox.s3.auth` refuses requests not signed with the keys in
``GDC_SANDBOX_ACCESS_KEY`` / ``GDC_SANDBOX_SECRET_KEY`` (environment, so the secret is not on the command line).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from werkzeug.serving import make_server


def build_app(data_dir: str | None, keys: tuple[str, str] | None = None) -> object:
    """moto's S3 app, persisted to ``data_dir`` and guarded by ``keys`` (access key, secret) when given."""
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app: object = DomainDispatcherApplication(create_backend_app)
    if data_dir:
        from sandbox.s3.persist import PersistentS3

        app = PersistentS3(app, data_dir)  # type: ignore[arg-type]
    if keys:
        from sandbox.s3.auth import RequireKeys

        app = RequireKeys(app, *keys)  # type: ignore[arg-type]
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.s3.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--data-dir", default=None, help="persist buckets here (write-through, restored at start)")
    parser.add_argument(
        "--require-keys",
        action="store_true",
        help="refuse requests not signed with GDC_SANDBOX_ACCESS_KEY / GDC_SANDBOX_SECRET_KEY",
    )
    args = parser.parse_args(argv)
    keys = None
    if args.require_keys:
        access, secret = os.environ.get("GDC_SANDBOX_ACCESS_KEY"), os.environ.get("GDC_SANDBOX_SECRET_KEY")
        if not access or not secret:
            parser.error("--require-keys needs GDC_SANDBOX_ACCESS_KEY and GDC_SANDBOX_SECRET_KEY in the environment")
        keys = (access, secret)
    configure_logging()
    serve(build_app(args.data_dir, keys), args.host, args.port, "S3 endpoint")
    return 0


def configure_logging() -> None:
    """INFO lines on stderr (the log file), set before :func:`build_app` so that its restore report is kept."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(app: object, host: str, port: int, name: str) -> None:
    """Serve a WSGI app built by :func:`build_app` (or wrapping one) until interrupted."""
    configure_logging()  # a no-op when the caller already did
    from moto.moto_server.werkzeug_app import MotoRequestHandler


    class PlainLogHandler(MotoRequestHandler):  # type: ignore[misc]
        """Request lines without werkzeug's ANSI colours: s3.log is a file, read with less and grep."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            self.log("info", '"%s" %s %s', self.requestline, getattr(code, "value", code), size)

    server = make_server(host, port, app, threaded=True, request_handler=PlainLogHandler)  # type: ignore[arg-type]
    print(f"{name} listening on http://{host}:{server.server_port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
