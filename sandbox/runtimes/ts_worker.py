"""A TorchServe worker launcher: the worker forked by the pod's zygote when it can be, else started cold.

Usage: ``IMAGE_PYTHON -I -S path/to/ts_worker.py SOCKET WORKER_ARGS...`` (what the frontend runs as a worker's
Python, through the pod's ``worker-python`` script; see :func:`sandbox.runtimes.torchserve.worker_python_script`).

It hands ``WORKER_ARGS``, its working folder, environment and standard streams to the zygote listening on
``SOCKET`` (:mod:`ts_zygote`) and stays as the worker's stand-in for the frontend: it ends when the worker ends,
with its exit status, and the worker ends when it is killed. When there is no zygote, or the zygote answers
``cold``, it becomes the cold worker: ``exec IMAGE_PYTHON WORKER_ARGS...``, the same process a cold start runs.
Standard library only, no syntax newer than Python 3.8: it runs on the image's Python, in isolated mode.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys


def cold(args: list) -> None:
    """Become ``python WORKER_ARGS...``, exactly as the frontend would have started it."""
    os.execv(sys.executable, [sys.executable, *args])


def forked(path: str, args: list) -> int | None:
    """Have the zygote fork the worker and wait for it; its exit status, or None if it must start cold."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        order = {"argv": [sys.executable, *args], "cwd": os.getcwd(), "env": dict(os.environ)}
        payload = (json.dumps(order) + "\n").encode()
        fds = array.array("i", [0, 1, 2])
        conn.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        replies = conn.makefile("rb")
        first = replies.readline().split()
    except OSError:
        return None
    if len(first) != 2 or first[0] != b"pid":
        return None  # "cold", or the zygote died before forking
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the worker holds the frontend's pipes now: their end is its end
        os.dup2(null, fd)
    try:
        last = replies.readline().split()
    except OSError:
        last = []
    return int(last[1]) if len(last) == 2 and last[0] == b"exit" else -signal.SIGKILL


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python -I -S ts_worker.py SOCKET WORKER_ARGS...")
    path, args = sys.argv[1], sys.argv[2:]
    worker = args[0].replace(os.sep, "/").endswith("/ts/model_service_worker.py")
    status = forked(path, args) if worker else None  # the frontend also runs its metrics collector this way
    if status is None:
        cold(args)
    elif status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    os._exit(status if status is not None and status >= 0 else 1)


if __name__ == "__main__":
    main()
