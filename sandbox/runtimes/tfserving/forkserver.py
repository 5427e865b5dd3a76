"""A warm parent that imports TensorFlow once and forks one model server per pod.

Run as ``python -m sandbox.runtimes.tfserving.forkserver`` (by :mod:`sandbox.runtimes.forkserver`).

Importing TensorFlow is most of a model server's start-up, and most of its memory. This process does it once,
then reads orders on stdin, one JSON line per pod: ``{"argv": [...], "cwd": ..., "env": {...}, "log": ...,
"own_log": ...}``. For each it forks a child that leaves its session, takes on the pod's working folder,
environment and log (starting with what this process printed while importing, as a cold start would), and runs
exactly what ``python -m sandbox.runtimes.tfserving ARGV`` runs; it answers ``{"pid": N}`` on stdout. Each pod is
one process on the image's own interpreter; the pages TensorFlow filled at import stay shared between pods until
one of them writes them. Children are not waited for (``SIGCHLD`` ignored: the kernel reaps them). End of input
ends this process, not the pods.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import traceback
from typing import Any

from . import tflog


def _become(order: dict[str, Any]) -> list[str]:
    """In a fresh child: take on the pod's working folder, environment and log file; return its server flags."""
    os.chdir(str(order["cwd"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(order["env"]).items()})
    tempfile.tempdir = None  # TMPDIR is the pod's now
    log = os.open(str(order["log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    own_log = str(order.get("own_log") or "")
    if own_log and os.path.isfile(own_log):
        with open(own_log, "rb") as earlier:
            os.write(log, earlier.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    return [str(a) for a in order["argv"]]


def _serve(order: dict[str, Any], server_main: Any) -> int:
    """The child: one model server for one pod."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        flags = _become(order)
        sys.argv = ["sandbox.runtimes.tfserving", *flags]
        return int(server_main.main(flags) or 0)
    except SystemExit as exc:  # argparse's usage errors, as a cold start exits with them
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def main() -> int:
    tflog.quiet_tensorflow_python_logs()
    import tensorflow  # noqa: F401  (the slow part, done once for every pod)

    from . import __main__ as server_main
    from . import grpc_server, rest, server  # noqa: F401

    return serve_orders(server_main)


def serve_orders(server_main: Any) -> int:
    """Fork ``server_main.main(flags)`` once per order on stdin until stdin ends."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed here goes to the log, never into the replies
    for line in sys.stdin:
        if not line.strip():
            continue
        order = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            os._exit(_serve(order, server_main))
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
