"""Warm idle TorchServes: per runtime interpreter, one TorchServe started ahead with no model, for the next pod.

Starting TorchServe's frontend (a JVM) is a large part of a PyTorch pod's start-up. The control plane therefore
keeps one idle TorchServe per runtime interpreter: started exactly as a pod's server (the same launcher, config,
environment and worker launcher; its own free ports, empty model store, log and temp folder) but with no model
registered. A pod whose server would have the same configuration (interpreter, host, worker count) takes it over
(:meth:`IdleServer.become`): the idle server's folder is renamed to the pod's folder, its log to the pod's log,
its record to the pod's; the server knows its files by a link in its temp folder, which then points at the
pod's folder. The pod then registers ``model.mar`` through the management API as a cold pod does, so every
failure is TorchServe's own. Each take-over starts a new idle server for the next pod.

A pod starts cold, as before, when there is no idle server that fits (none yet, it died, another host or worker
count) or when it restarts and keeps its log. An idle server is recorded like a starting pod under a ``warm-``
name, so that ``gdc-sandbox down`` stops it even when the control plane is gone; it is not a pod, and is never
counted or listed as one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.process import ManagedProcess, free_port, stop_group
from sandbox.runtimes.base import PodSpec, process_env
from sandbox.runtimes.torchserve import ServerFiles, TorchServePod

if TYPE_CHECKING:
    from sandbox.runtimes.forkserver import ForkServers

PREFIX = "warm-torchserve-"
STOP_GRACE = 2.0
"""Seconds an idle server gets to exit after SIGTERM (it holds nothing worth waiting for), as pods get."""


@dataclass
class IdleServer:
    """One TorchServe running with no model, waiting for a pod."""

    name: str
    python: Path
    host: str
    workers: int
    ports: dict[str, int]
    files: ServerFiles
    """Its folder, known to the server through the link ``scratch/pod``."""
    scratch: Path
    """Its temp folder (TMPDIR: the workers' sockets and unpacked models); the pod's temp folder once taken over."""
    log: Path
    process: ManagedProcess

    def fits(self, python: Path, host: str, workers: int) -> bool:
        return (self.python, self.host, self.workers) == (python, host, workers)

    def become(self, spec: PodSpec, release: Callable[[str], None]) -> ManagedProcess | None:
        """Take on pod ``spec``'s folder, log and record; None (and stopped) if the files cannot be moved."""
        try:
            if spec.pod_dir.exists():
                shutil.rmtree(spec.pod_dir)
            spec.pod_dir.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.files.folder, spec.pod_dir)
            link = self.scratch / "pod.new"
            link.symlink_to(spec.pod_dir)
            os.replace(link, self.files.seen_as)
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.log, spec.log_path)
        except OSError:
            self.stop(release)
            return None
        process = self.process.renamed(spec.name, spec.log_path)
        if spec.spawn_record is not None:
            process.record.save(spec.spawn_record)
        release(self.name)
        return process

    def stop(self, release: Callable[[str], None]) -> None:
        """Stop it and remove its folders, log and record."""
        stop_group(self.process.record, STOP_GRACE)  # also removes the temp folder
        release(self.name)
        shutil.rmtree(self.files.folder, ignore_errors=True)
        self.log.unlink(missing_ok=True)


class WarmTorchServes:
    """At most one idle TorchServe per runtime interpreter; thread-safe. A room of :class:`ForkServers`."""

    def __init__(self, forkservers: ForkServers) -> None:
        self.run_dir = forkservers.run_dir
        self.log_dir = forkservers.log_dir
        self.record_path = forkservers.record_path
        self.release = forkservers.release
        self._idle: dict[Path, IdleServer] = {}
        self._lock = threading.Lock()
        self._closed = False
        for leftover in self.run_dir.glob(PREFIX + "*"):  # of a control plane that was killed (`down` stopped them)
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.log_dir.glob(PREFIX + "*.log"):
            leftover.unlink(missing_ok=True)

    def prepare(self, python: Path, host: str, workers: int) -> None:
        """Start the idle server of ``python`` for pods on ``host`` with ``workers``, unless one is running (it
        answers /ping a few seconds later); one for another host or worker count is replaced."""
        with self._lock:
            current = self._idle.get(python)
            ready = current is not None and current.fits(python, host, workers) and current.process.is_alive()
            if self._closed or ready:
                return
            if current is not None:
                current.stop(self.release)
            self._idle[python] = self._start(python, host, workers)

    def take(self, python: Path, host: str, workers: int) -> IdleServer | None:
        """The idle server of ``python`` for a pod to become, if there is one that fits and it is running."""
        with self._lock:
            server = self._idle.get(python)
            if server is None or not server.fits(python, host, workers):
                return None
            del self._idle[python]
        if not server.process.is_alive():
            server.stop(self.release)
            return None
        return server

    def close(self) -> None:
        """Stop every idle server; later :meth:`prepare` does nothing."""
        with self._lock:
            self._closed = True
            servers, self._idle = list(self._idle.values()), {}
        for server in servers:
            server.stop(self.release)

    def _start(self, python: Path, host: str, workers: int) -> IdleServer:
        name = PREFIX + secrets.token_hex(4)
        scratch = Path(tempfile.mkdtemp(prefix="gdcs-"))  # short: TorchServe's Unix sockets go there
        files = ServerFiles(self.run_dir / name, scratch / "pod", scratch)
        files.seen_as.symlink_to(files.folder)
        ports = {port: free_port(host) for port in TorchServePod.PORTS}
        files.write(python, host, ports, workers)
        log = self.log_dir / f"{name}.log"
        process = ManagedProcess.start(
            name,
            files.argv(python),
            log,
            env=files.env(process_env(scratch)),
            cwd=files.folder,
            record_path=self.record_path(name) if self.record_path else None,
            scratch_dir=scratch,
        )
        return IdleServer(name, python, host, workers, ports, files, scratch, log, process)
