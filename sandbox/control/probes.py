"""Readiness and liveness probes of the model-server pods, as the kubelet runs them.

Every ``probe_period`` seconds each pod's health route is asked, with ``probe_timeout`` seconds to answer
(the runtime's own health check, :func:`sandbox.runtimes.base.health_check`: TF Serving's
``/v1/models/default``, TorchServe's ``/ping``). One probe serves both verdicts, as a kubelet whose
readiness and liveness probes ask the same route:

- **readiness**: after ``readiness_failure_threshold`` failures in a row the pod is out of traffic (the
  DeployedModel's status names it and says why); its first answer puts it back.
- **liveness**: after ``liveness_failure_threshold`` failures in a row the pod is killed, and restarted with
  the usual back-off (:mod:`sandbox.control.restarts`), the probe's reason recorded as its termination.

A busy pod is not a hung pod. A model server answers its health route on other threads than the ones that
run predictions (TF Serving's REST threads, TorchServe's frontend), so a long request does not silence it,
but a machine short of CPU can: the sandbox shares a laptop's cores with the load it serves, which a GDC
node does not. So a probe that times out while the pod's processes (a container pod's: its container's)
used at least :data:`BUSY_CPU_SHARE` of a core meanwhile counts neither way: the pod is working. A process
that is stopped (SIGSTOP), deadlocked or waiting forever uses none, and fails. A pod silent and busy for longer
than :data:`BUSY_PATIENCE` (longer than the gateway waits for an answer) is taken for hung after all: its busy
probes count as failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.process import is_stopped, stopped_note
from sandbox.runtimes.base import PodInfo, health_check
from sandbox.settings import Settings

BUSY_CPU_SHARE = 0.1
"""Share of one core a pod's processes must use while a probe waits for it to count as working, not hung.
An idle model server uses next to none (measured: TF Serving and TorchServe's JVM under 2 %)."""

BUSY_PATIENCE = 300.0
"""Seconds a pod may stay silent while busy before its probes count as failed (a CPU-bound loop that never lets
the server answer is a hang too)."""

ANSWERED, FAILED, BUSY = "answered", "failed", "busy"
NOT_READY, READY, NOT_LIVE = "not-ready", "ready", "not-live"


@dataclass(frozen=True)
class ProbeSettings:
    period: float
    """Seconds between two probes of a pod; 0: no probes."""
    timeout: float
    readiness_failures: int
    liveness_failures: int

    @classmethod
    def of(cls, settings: Settings) -> ProbeSettings:
        return cls(
            settings.probe_period,
            settings.probe_timeout,
            settings.readiness_failure_threshold,
            settings.liveness_failure_threshold,
        )

    @property
    def enabled(self) -> bool:
        return self.period > 0


@dataclass(frozen=True)
class Probe:
    """What one probe found: ``answered``, ``failed`` (with the problem) or ``busy`` (silent but working)."""

    outcome: str
    problem: str = ""
    stopped_pid: int | None = None
    """The pod's process, when a signal has stopped it (SIGSTOP): the likely cause of its silence."""

    def said(self, resumable: bool = True) -> str:
        """The problem, with the stopped process named (and, while it runs, how to resume it)."""
        if self.stopped_pid is None:
            return self.problem
        return self.problem + stopped_note(self.stopped_pid, resumable)


def probe(pod: PodInfo, timeout: float) -> Probe:
    """Ask the pod's health route once; a silence while its processes work is ``busy``, not ``failed``."""
    pid = pod.process.pid
    cpu_before, started = pod.cpu_seconds(), time.monotonic()
    health = health_check(pod, timeout)
    if health.healthy:
        return Probe(ANSWERED)
    if health.timed_out:
        cpu_after, elapsed = pod.cpu_seconds(), time.monotonic() - started
        if cpu_before is not None and cpu_after is not None and elapsed > 0:
            share = (cpu_after - cpu_before) / elapsed
            if share >= BUSY_CPU_SHARE:
                return Probe(BUSY, f"{health.problem} while its processes used {share:.0%} of a core")
    return Probe(FAILED, health.problem, pid if is_stopped(pid) else None)


@dataclass(frozen=True)
class Change:
    """A verdict of the probes on one pod: ``not-ready``, ``ready``, ``not-live``, or ``busy`` (first excused
    silence of a run: worth a log line)."""

    kind: str
    message: str


@dataclass
class ProbeState:
    """One pod's failures in a row and whether it is in traffic; what each probe changes."""

    settings: ProbeSettings
    failures: int = 0
    ready: bool = True
    busy_since: float | None = None
    """Monotonic time of the first of the current run of busy probes."""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((ANSWERED, FAILED, BUSY), 0))
    """How many probes had each outcome (``gdc-sandbox status`` and the pods API show them)."""

    def record(self, result: Probe, now: float) -> list[Change]:
        """Count a probe made at monotonic time ``now``; what it changes."""
        self.counts[result.outcome] += 1
        if result.outcome == ANSWERED:
            self.failures, self.busy_since = 0, None
            if self.ready:
                return []
            self.ready = True
            return [Change(READY, "it answers its health route again")]
        if result.outcome == BUSY:
            if self.busy_since is None:  # neither a failure nor an answer
                self.busy_since = now
                return [Change(BUSY, result.problem)]
            if now - self.busy_since < BUSY_PATIENCE:
                return []
            result = Probe(FAILED, f"{result.problem}, silent for over {BUSY_PATIENCE:g}s")
        else:
            self.busy_since = None
        self.failures += 1
        changes = []
        if self.ready and self.failures >= self.settings.readiness_failures:
            self.ready = False
            changes.append(Change(NOT_READY, f"readiness probe failed {_times(self.failures)}: it {result.said()}"))
        if self.failures >= self.settings.liveness_failures:  # it is killed next: no advice on resuming it
            message = f"liveness probe failed {_times(self.failures)}: it {result.said(resumable=False)}"
            changes.append(Change(NOT_LIVE, message))
        return changes


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times in a row"


def watch(
    pod: PodInfo,
    state: ProbeState,
    stopping: threading.Event,
    current: Callable[[], bool],
    act: Callable[[Change], None],
) -> None:
    """Probe ``pod`` every period and ``act`` on each change, until it leaves the pod table (``current()`` is
    False), the control plane stops, or its liveness fails (the caller kills it). Runs in the pod's own thread,
    as the kubelet runs one worker per probe."""
    settings = state.settings
    while not stopping.wait(settings.period):
        if not current():
            return
        for change in state.record(probe(pod, settings.timeout), time.monotonic()):
            if stopping.is_set() or not current():
                return
            act(change)
            if change.kind == NOT_LIVE:
                return
