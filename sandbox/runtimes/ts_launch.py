"""Start TorchServe with its own launcher, its workers run by a given command instead of this Python.

Usage: ``IMAGE_PYTHON path/to/ts_launch.py WORKER_PYTHON ZYGOTE_SOCKET [torchserve arguments...]``

Run by the image's own interpreter (Python 3.9 with the image's torch and TorchServe), as a script so
that the sandbox's folder is not on the model server's path. TorchServe's launcher hands ``sys.executable``
to the frontend as the workers' Python (``--python``); this module swaps it for ``WORKER_PYTHON`` (see
:func:`sandbox.runtimes.torchserve.worker_python_script`) and runs the launcher unchanged. First it starts the
pod's worker zygote (:mod:`ts_zygote`, listening on ``ZYGOTE_SOCKET``, its messages in ``ZYGOTE_SOCKET.log``),
which imports torch while the frontend starts; it ends with the frontend. The frontend runs in an empty working
folder (``frontend`` in the pod's temp folder): TorchServe puts ``.`` on the JVM's class path, and the JVM uses
the runtime's class-data-sharing archive (:mod:`ts_cds`) only when that folder is empty. Keep it free of sandbox
imports and of syntax newer than Python 3.8: it is the model server's entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys

ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ts_zygote.py")
#: What the frontend adds to its own environment for its workers (ConfigManager.getBackendConfiguration, with the
#: defaults of a config that does not set them, as the pods' does not).
BACKEND_ENV = {"TS_DECODE_INPUT_REQUEST": "true", "TS_IPEX_ENABLE": "false", "TS_IPEX_GPU_ENABLE": "false"}


def start_zygote(socket_path: str) -> subprocess.Popen:
    """The worker zygote, in the environment the frontend gives its workers (but for PYTHONPATH)."""
    with open(socket_path + ".log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, ZYGOTE, socket_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **BACKEND_ENV},
        )


def empty_folder() -> str:
    """An empty folder in the pod's temp folder, for the frontend to run in."""
    path = os.path.join(os.environ.get("TMPDIR") or "/tmp", "frontend")
    os.makedirs(path, exist_ok=True)
    return path


def main() -> None:
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this folder holds modules named like the model server's (tensorflow.py, torchserve.py)
    if len(sys.argv) < 3:
        sys.exit("usage: python ts_launch.py WORKER_PYTHON ZYGOTE_SOCKET [torchserve arguments...]")
    zygote = start_zygote(sys.argv[2])
    try:
        os.chdir(empty_folder())
        from ts.model_server import start

        sys.executable = sys.argv[1]
        sys.argv = ["torchserve", *sys.argv[3:]]
        start()
    finally:
        zygote.kill()
        zygote.wait()


if __name__ == "__main__":
    main()
