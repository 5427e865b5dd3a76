"""A model server that imports TensorFlow first, then waits for its pod.

Run as ``python -m sandbox.runtimes.tfserving.standby``.

Importing TensorFlow is most of a model server's start-up. A standby does it ahead of time, then reads one
JSON line on stdin, ``{"argv": [...], "cwd": ..., "env": {...}, "log": ..., "own_log": ...}``, takes on that
pod's working folder, environment and log (its own output so far goes to the head of the pod log, where a cold
start would have printed it), and runs exactly what ``python -m sandbox.runtimes.tfserving ARGV`` runs.
It is one process for one pod, on the image's own interpreter, like a cold start.
End of input means "not needed": it exits 0.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from . import tflog


def _become(order: dict[str, object]) -> list[str]:
    """Take on the pod's working folder, environment and log file; return its server flags."""
    os.chdir(str(order["cwd"]))
    env = order["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    tempfile.tempdir = None  # TMPDIR is the pod's now
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(str(order["log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    own_log = str(order.get("own_log") or "")
    if own_log and os.path.isfile(own_log):
        with open(own_log, "rb") as earlier:
            os.write(log, earlier.read())
        os.unlink(own_log)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    argv = order["argv"]
    assert isinstance(argv, list)
    return [str(a) for a in argv]


def main() -> int:
    tflog.quiet_tensorflow_python_logs()
    import tensorflow  # noqa: F401  (the slow part, done before anyone waits)

    from . import __main__ as server_main
    from . import grpc_server, rest, server  # noqa: F401

    line = sys.stdin.readline()
    if not line.strip():
        return 0
    argv = _become(json.loads(line))
    sys.argv = ["sandbox.runtimes.tfserving", *argv]
    return server_main.main(argv)


if __name__ == "__main__":
    sys.exit(main())
