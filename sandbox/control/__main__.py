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

    def stop_pods() -> list[str]:
        """Stop every pod this control plane started (at once); the process keeps answering until signalled."""
        stopped = controller.shutdown()
        print(f"stopped {len(stopped)} pod(s): {', '.join(stopped) or '-'}", file=sys.stderr, flush=True)
        return stopped

    def on_signal(signum: int, frame: FrameType | None) -> None:
        def leave() -> None:
            controller.shutdown()  # nothing left when `down` asked first; waits for a shutdown under way
            print("control plane stopped", file=sys.stderr, flush=True)
            os._exit(0)  # open keep-alive sockets do not matter

        threading.Thread(target=leave, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app = ControlPlaneApp(controller, stop_pods)
    server = create_server(app, host=settings.host, port=args.port, threads=args.threads, ident="gdc-sandbox")
    print(f"control plane listening on {gateway_url}", file=sys.stderr, flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
