"""Run the control plane: ``python -m sandbox.control --port 8080 --s3-endpoint http://127.0.0.1:9000``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.control.api import ControlPlaneApp
from sandbox.control.controller import Controller
from sandbox.settings import Settings


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith(("4", "5")):
            super().log_request(code, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.control")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--s3-endpoint", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    settings.ensure_dirs()
    gateway_url = f"http://{settings.host}:{args.port}"
    controller = Controller(settings, args.s3_endpoint, gateway_url)
    done = threading.Event()
    server_box: list = []

    def shutdown() -> None:
        if done.is_set():
            return
        done.set()
        controller.shutdown()
        if server_box:
            server_box[0].shutdown()

    app = ControlPlaneApp(controller, shutdown)
    server = make_server(settings.host, args.port, app, threaded=True, request_handler=_QuietHandler)
    server.daemon_threads = True  # keep-alive client connections must not hold up exit
    server_box.append(server)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"control plane listening on {gateway_url}", file=sys.stderr, flush=True)
    server.serve_forever()
    controller.shutdown()
    print("control plane stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
