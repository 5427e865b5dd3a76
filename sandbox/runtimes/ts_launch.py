"""Start TorchServe with its own launcher, its workers run by a given command instead of this Python.

Usage: ``python -m sandbox.runtimes.ts_launch WORKER_PYTHON [torchserve arguments...]``

TorchServe's launcher hands ``sys.executable`` to the frontend as the workers' Python (``--python``); this
module swaps it for ``WORKER_PYTHON`` (see :func:`sandbox.runtimes.torchserve.worker_python_script`) and
runs the launcher unchanged. Keep it free of sandbox imports: it is the model server's entry point.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m sandbox.runtimes.ts_launch WORKER_PYTHON [torchserve arguments...]")
    from ts.model_server import start

    sys.executable = sys.argv[1]
    sys.argv = ["torchserve", *sys.argv[2:]]
    start()


if __name__ == "__main__":
    main()
