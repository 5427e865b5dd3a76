"""Pods that die: what is recorded about each death, and when the pod is started again (back-off).

Kubernetes-like: a pod that dies is restarted after a delay that doubles with each consecutive death
(capped); a pod that dies again soon after a restart is in ``CrashLoopBackOff``. A pod that ran for a
while before dying starts the count again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.control.store import now_rfc3339
from sandbox.process import describe_exit, tail

MAX_BACKOFF = 300.0
"""Seconds; Kubernetes caps its restart back-off at five minutes."""
STABLE_AFTER = 60.0
"""A pod that served this long before dying starts its back-off from the beginning."""
LOG_TAIL_LINES = 8


@dataclass
class Termination:
    """Why a pod stopped, as ``status.lastTermination`` shows it."""

    pod: str
    message: str
    """``killed by signal 9 (SIGKILL)``, ``exit code 1``, a failed liveness probe, or a restart's failure."""
    log: str
    exit_code: int | None = None
    log_tail: str = ""
    finished_at: str = field(default_factory=now_rfc3339)
    by_control_plane: bool = False
    """The control plane killed it (its liveness probe failed), rather than it dying on its own."""

    @classmethod
    def of_exit(cls, pod: str, code: int | None, log: str, cause: str = "") -> Termination:
        """The exit of a pod; ``cause``: why the control plane killed it (empty: it died on its own)."""
        message = f"{cause}; the control plane stopped it ({describe_exit(code)})" if cause else describe_exit(code)
        return cls(pod, message, log, code, tail_of(log), by_control_plane=bool(cause))

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"pod": self.pod, "message": self.message, "finishedAt": self.finished_at}
        if self.by_control_plane:
            status["reason"] = "LivenessProbeFailed"
        if self.exit_code is not None:
            status["exitCode" if self.exit_code >= 0 else "signal"] = abs(self.exit_code)
        status.update(log=self.log, logTail=self.log_tail)
        return status


def tail_of(log: str) -> str:
    return tail(Path(log), LOG_TAIL_LINES)


@dataclass
class PodRestarts:
    """The restart history of one pod (by name: a restarted pod keeps its name and its log)."""

    restarts: int = 0
    consecutive: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last: Termination | None = None
    restart_at: float | None = None
    """Monotonic time of the pending restart; None while the pod runs."""

    @property
    def crash_loop(self) -> bool:
        return self.consecutive >= 2


class RestartBook:
    """Thread-safe bookkeeping of deaths and pending restarts, per DeployedModel and pod."""

    def __init__(self, base_backoff: float) -> None:
        self.base = base_backoff
        self._lock = threading.Lock()
        self._pods: dict[Any, dict[str, PodRestarts]] = {}

    def died(self, key: Any, pod: str, termination: Termination) -> tuple[PodRestarts, float]:
        """Record a death; returns the pod's history and the delay before its restart."""
        with self._lock:
            entry = self._pods.setdefault(key, {}).setdefault(pod, PodRestarts())
            ran = time.monotonic() - entry.started_at
            entry.consecutive = 1 if ran >= STABLE_AFTER else entry.consecutive + 1
            entry.restarts += 1
            entry.last = termination
            delay = min(MAX_BACKOFF, self.base * 2 ** (entry.consecutive - 1))
            entry.restart_at = time.monotonic() + delay
            return entry, delay

    def started(self, key: Any, pod: str) -> None:
        with self._lock:
            entry = self._pods.setdefault(key, {}).setdefault(pod, PodRestarts())
            entry.started_at = time.monotonic()
            entry.restart_at = None

    def of(self, key: Any) -> dict[str, PodRestarts]:
        with self._lock:
            return dict(self._pods.get(key, {}))

    def pending(self, key: Any) -> dict[str, PodRestarts]:
        return {name: p for name, p in self.of(key).items() if p.restart_at is not None}

    def forget(self, key: Any) -> None:
        with self._lock:
            self._pods.pop(key, None)
