"""Start TorchServe with its own launcher, its workers run by a given command instead of this Python.

Usage: ``IMAGE_PYTHON path/to/ts_launch.py WORKER_PYTHON [torchserve arguments...]``

Run by the image's own interpreter (Python 3.9 with the image's torch and TorchServe), as a script so
that the sandbox's folder is not on the model server's path. TorchServe's launcher hands ``sys.executable``
to the frontend as the workers' Python (``--python``); this module swaps it for ``WORKER_PYTHON`` (see
:func:`sandbox.runtimes.torchserve.worker_python_script`) and runs the launcher unchanged. Keep it free of
sandbox imports and of syntax newer than Python 3.8: it is the model server's entry point.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this folder holds modules named like the model server's (tensorflow.py, torchserve.py)
    if len(sys.argv) < 2:
        sys.exit("usage: python ts_launch.py WORKER_PYTHON [torchserve arguments...]")
    from ts.model_server import start

    sys.executable = sys.argv[1]
    sys.argv = ["torchserve", *sys.argv[2:]]
    start()


if __name__ == "__main__":
    main()
