"""A TorchServe pod's worker zygote: imports what a TorchServe worker imports once, then forks the workers.

Usage: ``IMAGE_PYTHON path/to/ts_zygote.py SOCKET`` (started by :mod:`ts_launch` next to the frontend, in the
pod's process group, so that stopping the pod stops it and every worker it forked).

A TorchServe worker (``ts/model_service_worker.py``) spends most of its start-up importing torch. This process
imports it once, while the frontend (a JVM) starts, and then serves the worker launcher :mod:`ts_worker`: for each
worker the frontend starts, the launcher sends its command line, working folder, environment and its standard
streams (the frontend's pipes); this process forks a child that takes all of them on and runs
``model_service_worker.py`` as ``__main__``, as ``python model_service_worker.py ARGS`` would. The worker prints what
a cold one prints (nothing is printed while importing), loads the model with the same code and fails with the
same messages. It answers ``cold`` instead (the launcher then runs the worker cold, as before) when the child
could not be what a cold worker is: another script or interpreter options, another environment (only PYTHONPATH
and PWD may differ), or a model folder holding a module named like one already imported here.

Protocol on the Unix socket, one connection per worker: the launcher sends a JSON order with the three file
descriptors attached; this process answers ``pid N`` then, once the worker ended, ``exit STATUS`` (negative: the
signal that ended it); or ``cold``. A worker whose launcher dies (the frontend kills it to stop the worker) ends
too. Keep this file free of sandbox imports and of syntax newer than Python 3.8: it runs on the image's Python.
"""

from __future__ import annotations

import array
import atexit
import importlib
import json
import os
import runpy
import signal
import socket
import sys
import threading
import traceback

MAX_FDS = 3
WORKER_SCRIPT = "model_service_worker.py"
#: Environment variables a worker may have of its own: the model's import path, the folder bash says it is in.
PER_WORKER = ("PYTHONPATH", "PWD")
_connections: set = set()
"""The launchers' connections this process holds (a forked worker keeps only its own)."""


def receive(conn: socket.socket) -> tuple[dict, list]:
    """One order and the descriptors sent with it (the launcher's stdin, stdout, stderr)."""
    fds = array.array("i")
    data = b""
    while not data.endswith(b"\n"):
        chunk, ancdata, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
        if not chunk:
            raise EOFError("the launcher went away")
        data += chunk
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return json.loads(data.decode()), list(fds)


def python_path(entries: str, cwd: str) -> list[str]:
    """The sys.path entries Python makes of a PYTHONPATH value (absolute, relative to ``cwd``)."""
    return [os.path.normpath(os.path.join(cwd, entry)) for entry in entries.split(os.pathsep)]


class Zygote:
    """The imported state and the rules that decide whether a worker may be forked from it."""

    def __init__(self) -> None:
        import ts

        self.ts_dir = os.path.dirname(os.path.realpath(ts.__file__))
        self.script = os.path.join(self.ts_dir, WORKER_SCRIPT)
        self.env = dict(os.environ)
        own = set(python_path(self.env.get("PYTHONPATH", ""), os.getcwd())) if self.env.get("PYTHONPATH") else set()
        self.base_path = [p for p in sys.path if p != self.ts_dir and p not in own]

    def load(self) -> None:
        """Import what the worker script imports (torch and TorchServe's worker modules)."""
        sys.path.insert(0, self.ts_dir)  # where a cold worker imports from: its script's folder first
        try:
            importlib.import_module("ts.model_service_worker")
        finally:
            sys.path.remove(self.ts_dir)

    def why_cold(self, order: dict) -> str:
        """Why this worker must start cold ('' if it can be forked)."""
        argv = [str(a) for a in order["argv"]]
        if len(argv) < 2 or os.path.realpath(argv[1]) != os.path.realpath(self.script):
            return f"not the worker script: {argv[1:2]}"
        env = dict(order["env"])
        changed = sorted(k for k in set(env) | set(self.env) if k not in PER_WORKER and env.get(k) != self.env.get(k))
        if changed:
            return f"environment differs: {changed}"
        imported = {name.split(".", 1)[0] for name in sys.modules}
        for folder in python_path(env.get("PYTHONPATH", ""), order["cwd"]):
            if folder in self.base_path or not os.path.isdir(folder):
                continue
            names = {entry.split(".", 1)[0] for entry in os.listdir(folder)}
            clash = sorted(names & imported)
            if clash:
                return f"{folder} holds modules named like imported ones: {clash}"
        return ""

    def worker_path(self, order: dict) -> list[str]:
        """sys.path of ``python SCRIPT`` with the order's PYTHONPATH: script folder, PYTHONPATH, the rest."""
        env = dict(order["env"])
        extra = python_path(env["PYTHONPATH"], order["cwd"]) if env.get("PYTHONPATH") else []
        path: list[str] = []
        for entry in [*extra, *self.base_path]:
            if entry not in path:  # site removes duplicates
                path.append(entry)
        return [self.ts_dir, *path]


def become_worker(zygote: Zygote, listener: socket.socket, conn: socket.socket, order: dict, fds: list) -> None:
    """In the forked child: take on the launcher's streams, folder and environment, run the worker, exit."""
    listener.close()
    for other in _connections - {conn}:
        other.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(order["cwd"])
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(order["env"]).items()})
    sys.path[:] = zygote.worker_path(order)
    sys.argv = [str(a) for a in order["argv"][1:]]
    importlib.invalidate_caches()
    numpy = sys.modules.get("numpy.random")
    if numpy is not None:
        numpy.seed()  # type: ignore[attr-defined]  # a cold worker seeds its own (random reseeds itself at fork)
    threading.Thread(target=_die_with_launcher, args=(conn,), daemon=True).start()
    code = 0
    try:
        runpy.run_path(zygote.script, run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # what the interpreter runs at exit, as a cold worker's would
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _die_with_launcher(conn: socket.socket) -> None:
    """The frontend stops a worker by killing its launcher: the worker then ends as a killed cold worker does."""
    try:
        while conn.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _await(pid: int, conn: socket.socket) -> None:
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    try:
        conn.sendall(f"exit {code}\n".encode())
    except OSError:
        pass
    _connections.discard(conn)
    conn.close()


def _orphan_on_parent_death() -> None:
    """End when the launcher of the pod ends (Linux ``PR_SET_PDEATHSIG``); the pod's stop ends it anyway."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)  # workers asked for while importing wait in the backlog
    zygote = Zygote()
    zygote.load()
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        try:
            order, fds = receive(conn)
        except (OSError, ValueError, EOFError):
            conn.close()
            continue
        try:
            why = zygote.why_cold(order)
            pid = -1 if why else os.fork()
        except OSError as exc:
            why, pid = f"{type(exc).__name__}: {exc}", -1
        if pid == 0:
            become_worker(zygote, listener, conn, order, fds)
        for fd in fds:
            os.close(fd)
        try:
            if why:
                print(f"cold worker: {why}", file=sys.stderr, flush=True)
                conn.sendall(b"cold\n")
                conn.close()
            else:
                _connections.add(conn)
                conn.sendall(f"pid {pid}\n".encode())
                threading.Thread(target=_await, args=(pid, conn), daemon=True).start()
        except OSError:
            pass  # the launcher went away: the worker sees it and ends


def main() -> None:
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this folder holds modules named like the model server's (tensorflow.py, torchserve.py)
    if len(sys.argv) != 2:
        sys.exit("usage: python ts_zygote.py SOCKET")
    _orphan_on_parent_death()
    serve(sys.argv[1])


if __name__ == "__main__":
    main()
