"""Child processes the sandbox starts and owns: start, record, health-wait, stop.

Every child runs in its own session (``start_new_session=True``) so that stopping it with
``os.killpg`` also ends what it spawned (TorchServe's JVM and Python workers). Each child is
recorded in a JSON file (pid, start time, argv, log path) so that ``status`` and ``down`` in
another process act on exactly the processes the sandbox started and nothing else: a recorded PID
counts only while its process start time still matches (no PID-reuse accidents).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TypeVar

import psutil

from sandbox.errors import PortInUse, StartupTimeout

T = TypeVar("T")

_children: dict[int, subprocess.Popen[bytes]] = {}
"""Children this process started and has not reaped yet, by PID: stopping one also reaps it, so no
``<defunct>`` entry outlives it; :func:`wait_exit` lets a watcher block until one exits."""
_children_lock = threading.Lock()


@dataclass
class ProcessRecord:
    """What is written to disk about a child, enough to find and stop it from another process."""

    name: str
    pid: int
    create_time: float
    argv: list[str]
    log_path: str
    scratch_dir: str = ""
    """A temp folder the process owns outside its working folder; removed when the process is stopped."""
    grace: float = 0.0
    """Seconds it needs, at least, to exit after SIGTERM before it is killed (0: whatever its stopper gives)."""

    def is_alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return abs(proc.create_time() - self.create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


class ManagedProcess:
    """One child process with its log file; stop() ends its whole process group."""

    def __init__(self, record: ProcessRecord, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.record = record
        self._popen = popen

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        record_path: Path | None = None,
        scratch_dir: Path | None = None,
        pipes: bool = False,
        grace: float = 0.0,
    ) -> ManagedProcess:
        """Start ``argv`` with its output in ``log_path``; ``pipes``: stdin and stdout are pipes to us instead
        (a child that takes orders), and only stderr goes to the log; ``grace``: see :attr:`ProcessRecord.grace`."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log if pipes else subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            create_time = time.time()
        with _children_lock:
            _children[popen.pid] = popen
        record = ProcessRecord(name, popen.pid, create_time, list(argv), str(log_path), str(scratch_dir or ""), grace)
        if record_path is not None:
            record.save(record_path)
        return cls(record, popen)

    @property
    def pid(self) -> int:
        return self.record.pid

    @property
    def pipes(self) -> tuple[IO[bytes], IO[bytes]] | None:
        """The child's (stdin, stdout) when it was started with ``pipes=True``."""
        if self._popen is None or self._popen.stdin is None or self._popen.stdout is None:
            return None
        return self._popen.stdin, self._popen.stdout

    def is_alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self.record.is_alive()

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def log_tail(self, lines: int = 30) -> str:
        return tail(Path(self.record.log_path), lines)

    def renamed(self, name: str, log_path: Path) -> ManagedProcess:
        """The same process under another name, its log moved to ``log_path`` (by the caller)."""
        return ManagedProcess(replace(self.record, name=name, log_path=str(log_path)), self._popen)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left."""
        stop_group(self.record, timeout)


def wait_exit(record: ProcessRecord) -> int | None:
    """Block until the recorded process exits and return its exit status (negative: the signal that ended
    it), reaping it; ``None`` when it is not a child of this process (then it is only waited for)."""
    with _children_lock:
        popen = _children.get(record.pid)
    if popen is None:
        try:
            psutil.Process(record.pid).wait()
        except psutil.Error:
            pass
        return _reported_exit(record)
    code = popen.wait()
    with _children_lock:
        _children.pop(record.pid, None)
    return code


def exit_status_path(log_path: Path | str) -> Path:
    """Where the parent of a process that is not ours (a fork server) writes its exit status: by its log."""
    return Path(log_path).with_suffix(".exit")


def _reported_exit(record: ProcessRecord, patience: float = 1.0) -> int | None:
    """The exit status its parent reported (it writes it as it reaps the process), or None."""
    path = exit_status_path(record.log_path)
    deadline = time.monotonic() + patience
    while True:
        try:
            code = int(json.loads(path.read_text())["exitCode"])
            path.unlink(missing_ok=True)
            return code
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)


def describe_exit(code: int | None) -> str:
    """``exit code 1`` / ``killed by signal 9 (SIGKILL)`` / ``exited`` (status unknown)."""
    if code is None:
        return "exited"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"


def stop_group(record: ProcessRecord, timeout: float = 10.0) -> None:
    """Stop a recorded child and its process group, only if it is still the process we started: SIGTERM, then
    SIGKILL after ``timeout`` seconds (or the record's longer :attr:`~ProcessRecord.grace`); reap it when it is
    our child; then remove its scratch folder (also when the process had already gone)."""
    try:
        _end_group(record, max(timeout, record.grace))
    finally:
        _reap(record.pid)
        if record.scratch_dir:
            shutil.rmtree(record.scratch_dir, ignore_errors=True)


def stop_all(records: Iterable[ProcessRecord], timeout: float = 10.0) -> list[str]:
    """Stop several recorded children at once (each waits out its own shutdown in parallel); returns the
    names of those that were still running."""
    records = list(records)
    if not records:
        return []
    running = [r.name for r in records if r.is_alive()]
    with ThreadPoolExecutor(max_workers=min(32, len(records)), thread_name_prefix="stop") as pool:
        list(pool.map(lambda r: stop_group(r, timeout), records))
    return running


def _poll_child(pid: int) -> None:
    with _children_lock:
        popen = _children.get(pid)
    if popen is not None:
        popen.poll()


def _reap(pid: int) -> None:
    with _children_lock:
        popen = _children.pop(pid, None)
    if popen is None:
        return
    try:
        popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with _children_lock:
            _children[pid] = popen  # still running (another process took its group?): keep it to reap later


def _end_group(record: ProcessRecord, timeout: float) -> None:
    if not record.is_alive():
        # The leader exited on its own (a graceful shutdown), but what it started in its session may still run
        # (e.g. pip creating a runtime): a group whose id is the leader's PID can only hold the leader's children.
        if _group_alive(record.pid):
            _signal(record.pid, record.pid, True, signal.SIGTERM)
        return
    try:
        pgid = os.getpgid(record.pid)
    except ProcessLookupError:
        return
    # Only signal the group when the child leads it (it was started in its own session).
    targets_group = pgid == record.pid
    _signal(record.pid, pgid, targets_group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _poll_child(record.pid)  # a reaped leader no longer keeps its group visible to killpg
        if not record.is_alive() and not (targets_group and _group_alive(pgid)):
            return
        time.sleep(0.05)
    _signal(record.pid, pgid, targets_group, signal.SIGKILL)
    end = time.monotonic() + 5
    while time.monotonic() < end and record.is_alive():
        time.sleep(0.05)


def _signal(pid: int, pgid: int, group: bool, sig: signal.Signals) -> None:
    try:
        if group:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg(0); look for a live member.
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by a process and its descendants; None when it is gone."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total
    except psutil.Error:
        return None


def is_stopped(pid: int) -> bool:
    """The process is stopped by a signal (SIGSTOP, SIGTSTP): it answers nothing until it gets SIGCONT."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def stopped_note(pid: int, resumable: bool = True) -> str:
    """What to add to a message about a process that :func:`is_stopped` (``resumable``: it still runs)."""
    if resumable:
        return f" (its process {pid} is stopped, as by SIGSTOP: `kill -CONT {pid}` resumes it)"
    return f" (its process {pid} was stopped, as by SIGSTOP)"


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def claim_port(port: int, host: str, service: str, env_var: str) -> int:
    """``port`` if nobody listens on it (``0``: a free port); otherwise :class:`PortInUse` naming the owner.

    Without this check a health probe would be answered by whatever already listens there.
    """
    if not port:
        return free_port(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise PortInUse(service, f"{host}:{port}", _listener(port), env_var) from None
    return port


def _listener(port: int) -> str:
    """``PID n (command line)`` of the process listening on ``port``, when this user may see it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"PID {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:160]})"
    except (psutil.Error, OSError):
        pass
    return ""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.1,
    alive: Callable[[], bool] | None = None,
) -> T | None:
    """Poll ``probe`` until it returns a truthy value, the deadline passes, or ``alive()`` turns False."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if alive is not None and not alive():
            return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_healthy(
    process: ManagedProcess,
    service: str,
    url: str,
    probe: Callable[[], bool],
    timeout: float,
) -> None:
    """Block until ``probe()`` is true; raise :class:`StartupTimeout` with the log tail if it never is."""
    started = time.monotonic()
    if wait_until(probe, timeout=timeout, interval=0.1, alive=process.is_alive):
        return
    waited = time.monotonic() - started
    why = "exited" if not process.is_alive() else "did not answer"
    error = StartupTimeout(service, url, waited, process.record.log_path, process.log_tail())
    error.message = f"{service} {why} before becoming ready at {url} ({waited:.1f}s)"
    raise error
