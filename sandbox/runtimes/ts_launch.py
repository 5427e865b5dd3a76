"""Start TorchServe with its own launcher, its workers run by a given command instead of this Python.

Usage: ``IMAGE_PYTHON path/to/ts_launch.py WORKER_PYTHON ZYGOTE_SOCKET [torchserve arguments...]``

Run by the image's own interpreter (Python 3.9 with the image's torch and TorchServe), as a script so
that the sandbox's folder is not on the model server's path. TorchServe's launcher hands ``sys.executable``
to the frontend as the workers' Python (``--python``); this module swaps it for ``WORKER_PYTHON`` (see
:func:`sandbox.runtimes.torchserve.worker_python_script`) and runs the launcher unchanged. First it starts the
pod's worker zygote (:mod:`ts_zygote`, listening on ``ZYGOTE_SOCKET``, its messages in ``ZYGOTE_SOCKET.log``),
which imports torch while the frontend starts; it ends with the frontend. The frontend runs in an empty working
folder (``frontend`` in the pod's temp folder): TorchServe puts ``.`` on the JVM's class path, and the JVM uses
the runtime's class-data-sharing archive (:mod:`ts_cds`) only when that folder is empty.

The pod's first process is the pod's init, as ``docker run --init`` gives a container: it forks the launcher and
reaps every process of the pod that is orphaned (a child subreaper), until the launcher ends, with whose exit
status it ends; a signal it gets is passed on to the launcher. Each worker, and each run of the frontend's
metrics collector, writes through two ``tee`` processes (:func:`sandbox.runtimes.torchserve.worker_python_script`)
that outlive it; without a reaper in the pod they would be left to PID 1, which may reap them late or never
(``[tee] <defunct>``). Keep this file free of sandbox imports and of syntax newer than Python 3.8: it is the
model server's entry point.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import traceback

ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ts_zygote.py")
#: What the frontend adds to its own environment for its workers (ConfigManager.getBackendConfiguration, with the
#: defaults of a config that does not set them, as the pods' does not).
BACKEND_ENV = {"TS_DECODE_INPUT_REQUEST": "true", "TS_IPEX_ENABLE": "false", "TS_IPEX_GPU_ENABLE": "false"}
PR_SET_CHILD_SUBREAPER = 36
PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


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


def launch() -> None:
    """Start the worker zygote, then TorchServe's own launcher with ``WORKER_PYTHON`` as its workers' Python."""
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


def run_launcher() -> int:
    """:func:`launch`, in the forked launcher; the exit status ``sys.exit`` would have made of its end."""
    try:
        launch()
        return 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def init(launcher: int) -> int:
    """Reap the children of this process, its own and adopted ones, until ``launcher`` ends (then those that have
    ended too); the launcher's exit status (negative: the signal that ended it)."""

    def pass_on(signum: int, frame: object) -> None:
        try:
            os.kill(launcher, signum)
        except ProcessLookupError:
            pass

    for signum in PASSED_ON:
        signal.signal(signum, pass_on)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == launcher:
            break
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main() -> None:
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this folder holds modules named like the model server's (tensorflow.py, torchserve.py)
    if len(sys.argv) < 3:
        sys.exit("usage: python ts_launch.py WORKER_PYTHON ZYGOTE_SOCKET [torchserve arguments...]")
    try:
        adopts = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: no init, the launcher runs in this process
        adopts = False
    if not adopts:
        launch()
        return
    launcher = os.fork()
    if launcher == 0:
        os._exit(run_launcher())
    status = init(launcher)
    if status < 0:  # end as the launcher ended: by its signal
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


if __name__ == "__main__":
    main()
