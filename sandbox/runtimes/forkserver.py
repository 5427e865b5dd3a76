"""Warm parents: per runtime interpreter, one process that has imported its framework and forks the pods.

A deploy asks the fork server of its image's interpreter for a model server (:meth:`ForkServers.spawn`): the
server forks a child that takes on the pod's folder, environment, log and flags and is that pod's one model
server. A deploy skips the framework import (seconds), and pods share the pages the import filled (memory).
Nothing else is shared: every pod is its own process, in its own session, on the image's own interpreter,
printing what a cold start prints. When there is no fork server (not started, or it died), the caller starts
the pod cold, as before.

A fork server is recorded like a starting pod (``record_path``) so that ``gdc-sandbox down`` stops it even when
the control plane is gone; stopping it does not stop the pods it forked (they left its session).

Runtimes that keep another kind of warm process (an idle TorchServe: :mod:`sandbox.runtimes.ts_warm`) keep it in
a *room* of these fork servers (:meth:`ForkServers.room`), recorded the same way and closed with them. Records of
warm processes are named with a :data:`STANDBY_PREFIXES` prefix: they are not pods.
"""

from __future__ import annotations

import json
import select
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Protocol, TypeVar

import psutil

from sandbox.process import ManagedProcess, ProcessRecord, exit_status_path, stop_group

#: How long a spawn waits for a fork server that is still importing its framework.
SPAWN_WAIT_SECONDS = 120.0
#: Name prefixes of recorded warm processes (fork servers, idle servers): not pods.
STANDBY_PREFIXES = ("forkserver-", "warm-")


class Room(Protocol):
    """A runtime's own pool of warm processes, kept by :class:`ForkServers`."""

    def close(self) -> None: ...


R = TypeVar("R", bound=Room)


def is_standby(name: str) -> bool:
    """Whether a recorded process is a warm process kept for later deploys rather than a pod."""
    return name.startswith(STANDBY_PREFIXES)


class ForkServers:
    """At most one fork server per interpreter (the key); thread-safe."""

    def __init__(
        self,
        log_dir: Path,
        record_path: Callable[[str], Path] | None = None,
        release: Callable[[str], None] = lambda name: None,
        run_dir: Path | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.run_dir = run_dir or log_dir
        """Where warm processes keep their working folders (on the pods' file system: a pod may take one over)."""
        self.record_path = record_path
        self.release = release
        self._servers: dict[str, ManagedProcess] = {}
        self._rooms: dict[str, Room] = {}
        self._lock = threading.Lock()
        self._closed = False

    def room(self, name: str, make: Callable[[ForkServers], R]) -> R:
        """The warm processes of kind ``name`` (``make(self)`` on first use); :meth:`close` closes them too."""
        with self._lock:
            room = self._rooms.get(name)
            if room is None:
                room = self._rooms[name] = make(self)
                if self._closed:
                    room.close()
            return room  # type: ignore[return-value]

    @staticmethod
    def _name(python: str) -> str:
        return "forkserver-" + "".join(c if c.isalnum() else "-" for c in python).strip("-")[-60:]

    def prepare(self, python: str, module: str, env: Mapping[str, str]) -> None:
        """Start the fork server of ``python`` (``python -m module``) unless it is running."""
        with self._lock:
            current = self._servers.get(python)
            if self._closed or (current is not None and current.is_alive()):
                return
            if current is not None:
                self._stop(current)
            name = self._name(python)
            scratch = Path(tempfile.mkdtemp(prefix="gdcs-fork-"))
            log = self.log_dir / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_bytes(b"")
            self._servers[python] = ManagedProcess.start(
                name,
                [python, "-m", module],
                log,
                env={**env, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)},
                cwd=scratch,
                record_path=self.record_path(name) if self.record_path else None,
                scratch_dir=scratch,
                pipes=True,
            )

    def spawn(
        self,
        python: str,
        *,
        name: str,
        flags: list[str],
        log_path: Path,
        env: Mapping[str, str],
        cwd: Path,
        record_path: Path | None,
        scratch_dir: Path | None,
    ) -> ManagedProcess | None:
        """A model server for pod ``name``, forked by ``python``'s fork server; None when there is none."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        exit_file = exit_status_path(log_path)
        exit_file.unlink(missing_ok=True)  # a restarted pod keeps its name and log: not its last exit
        order: dict[str, object] = {
            "argv": flags,
            "cwd": str(cwd),
            "env": dict(env),
            "log": str(log_path),
            "exit_file": str(exit_file),
        }
        with self._lock:
            server = self._servers.get(python)
            pipes = server.pipes if server is not None and server.is_alive() else None
            if server is None or pipes is None:
                return None
            order["own_log"] = server.record.log_path
            pid = _ask(pipes, order)
            if pid is None:  # it died or hung: stop it; the next prepare() starts a new one
                self._stop(self._servers.pop(python))
                return None
        try:
            create_time = psutil.Process(pid).create_time()
        except psutil.Error:
            create_time = 0.0  # already gone: is_alive() is False, the caller reports the failure from the log
        argv = [*server.record.argv, *flags]
        record = ProcessRecord(name, pid, create_time, argv, str(log_path), str(scratch_dir or ""))
        if record_path is not None:
            record.save(record_path)
        return ManagedProcess(record)

    def _stop(self, server: ManagedProcess) -> None:
        stop_group(server.record)
        self.release(server.record.name)

    def close(self) -> None:
        """Stop every fork server (the pods they forked keep running); later :meth:`prepare` does nothing."""
        with self._lock:
            self._closed = True
            servers, self._servers = list(self._servers.values()), {}
            rooms = list(self._rooms.values())
        for room in rooms:
            room.close()
        for server in servers:
            self._stop(server)
            Path(server.record.log_path).unlink(missing_ok=True)


def _ask(pipes: tuple[IO[bytes], IO[bytes]], order: dict[str, object]) -> int | None:
    """Send one order, read the forked child's pid (None if the server does not answer in time)."""
    stdin, stdout = pipes
    try:
        stdin.write((json.dumps(order) + "\n").encode())
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], SPAWN_WAIT_SECONDS)
        line = stdout.readline() if ready else b""
        return int(json.loads(line)["pid"]) if line else None
    except (OSError, ValueError, KeyError):
        return None

