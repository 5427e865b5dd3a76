"""Run the control plane: ``python -m sandbox.control --port 8080 --s3-endpoint http://127.0.0.1:9000``.

Served by waitress: HTTP/1.1 keep-alive and a fixed thread pool, so the gateway adds little latency
(werkzeug's development server closes every connection).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from waitress import create_server

from sandbox.control.api import ControlPlaneApp
from sandbox.control.controller import Controller
from sandbox.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.control")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    settings = Settings()
    settings.ensure_dirs()
    gateway_url = f"http://{settings.host}:{args.port}"
    controller = Controller(settings, args.s3_endpoint, gateway_url)
    stopping = threading.Lock()

    def shutdown() -> None:
        """Stop every pod this control plane started, then leave (open keep-alive sockets do not matter)."""
        if not stopping.acquire(blocking=False):
            return
        controller.shutdown()
        print("control plane stopped", file=sys.stderr, flush=True)
        os._exit(0)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app = ControlPlaneApp(controller, shutdown)
    server = create_server(app, host=settings.host, port=args.port, threads=args.threads, ident="gdc-sandbox")
    print(f"control plane listening on {gateway_url}", file=sys.stderr, flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
