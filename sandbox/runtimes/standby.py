"""Warm model servers: one idle process per runtime interpreter that has already imported its framework.

A deploy claims the standby of its image's interpreter (:meth:`StandbyPool.claim`): the process takes on the
pod's folder, environment, log and flags and becomes that pod's one model server, so a deploy skips the
framework import (seconds). A new standby is started for the next deploy once the claimed pod is up
(:meth:`StandbyPool.prepare`). Nothing is shared between pods: a standby serves exactly one pod, on the image's
own interpreter, and prints what a cold start prints (it moves its log so far to the head of the pod log).

A standby is recorded like a starting pod (``record_path``) so that ``gdc-sandbox down`` stops it even when
the control plane is gone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sandbox.process import ManagedProcess, ProcessRecord, stop_group


@dataclass
class _Standby:
    process: ManagedProcess
    scratch: Path


class StandbyPool:
    """At most one idle standby per interpreter (the key); thread-safe."""

    def __init__(
        self,
        log_dir: Path,
        record_path: Callable[[str], Path] | None = None,
        release: Callable[[str], None] = lambda name: None,
    ) -> None:
        self.log_dir = log_dir
        self.record_path = record_path
        self.release = release
        self._idle: dict[str, _Standby] = {}
        self._lock = threading.Lock()
        self._closed = False

    @staticmethod
    def _name(python: str) -> str:
        return "standby-" + "".join(c if c.isalnum() else "-" for c in python).strip("-")[-60:]

    def prepare(self, python: str, module: str, env: Mapping[str, str]) -> None:
        """Start a standby for ``python`` (running ``python -m module``) unless a live one is waiting."""
        with self._lock:
            current = self._idle.get(python)
            if self._closed or (current is not None and current.process.is_alive()):
                return
            if current is not None:
                self._discard(current)
            name = self._name(python)
            scratch = Path(tempfile.mkdtemp(prefix="gdcs-standby-"))
            log = self.log_dir / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_bytes(b"")
            popen_env = {**env, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
            process = ManagedProcess.start(
                name,
                [python, "-m", module],
                log,
                env=popen_env,
                cwd=scratch,
                record_path=self.record_path(name) if self.record_path else None,
                scratch_dir=scratch,
                stdin=subprocess.PIPE,
            )
            self._idle[python] = _Standby(process, scratch)

    def claim(
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
        """Hand the waiting standby of ``python`` to pod ``name``; None when there is none (start cold)."""
        with self._lock:
            standby = self._idle.pop(python, None)
        if standby is None:
            return None
        process = standby.process
        if not process.is_alive() or process.stdin is None:
            self._discard(standby)
            return None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        order = {
            "argv": flags,
            "cwd": str(cwd),
            "env": dict(env),
            "log": str(log_path),
            "own_log": process.record.log_path,
        }
        try:
            process.stdin.write((json.dumps(order) + "\n").encode())
            process.stdin.close()
        except OSError:
            self._discard(standby)
            return None
        record = ProcessRecord(
            name,
            process.pid,
            process.record.create_time,
            [*process.record.argv, *flags],
            str(log_path),
            str(scratch_dir or ""),
        )
        if record_path is not None:
            record.save(record_path)
        self.release(process.record.name)
        shutil.rmtree(standby.scratch, ignore_errors=True)
        process.record = record
        return process

    def _discard(self, standby: _Standby) -> None:
        stop_group(standby.process.record)
        self.release(standby.process.record.name)

    def close(self) -> None:
        """Stop every waiting standby; later :meth:`prepare` calls do nothing."""
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle.values()), {}
        for standby in idle:
            self._discard(standby)
            Path(standby.process.record.log_path).unlink(missing_ok=True)
