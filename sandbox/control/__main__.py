"""Run the control plane: ``python -m sandbox.control --port 8080 --s3-endpoint http://127.0.0.1:9000``.

One process, one port, served by uvicorn (httptools, uvloop; HTTP/1.1 keep-alive): predictions are answered on
its event loop, without ASGI when they are plain, and the admin API on a thread pool (see
:mod:`sandbox.control.server`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

from sandbox.control.api import ControlPlaneApp
from sandbox.control.controller import Controller
from sandbox.control.server import ControlPlaneProtocol, ControlPlaneServer
from sandbox.settings import Settings


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: SIGTERM/SIGINT stop the pods first (see ``on_signal``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.control")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--threads", type=int, default=16, help="threads of the admin API")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The format uses none of these, and each prediction logs a line: skip gathering them (the logging HOWTO's
    # "Optimization" section names these switches).
    logging._srcfile = None  # type: ignore[attr-defined]  # the caller's file and line (a stack walk)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
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
    app = ControlPlaneServer(ControlPlaneApp(controller, stop_pods), admin_threads=args.threads)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=args.port,
        loop="uvloop",
        http=ControlPlaneProtocol,  # uvicorn's httptools protocol; predictions skip ASGI
        lifespan="on",
        log_config=None,  # the logging configured above
        access_log=False,  # sandbox.requests logs each request with what matters (deployedModelId, error code)
        proxy_headers=False,  # loopback only: no proxy in front
        server_header=False,
        headers=[("Server", "gdc-sandbox")],
        timeout_keep_alive=120,
    )
    print(f"control plane listening on {gateway_url}", file=sys.stderr, flush=True)
    _Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
