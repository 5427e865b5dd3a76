"""Autoscaling: keep each serving DeployedModel between its pool's ``minReplica`` and ``maxReplica``.

Like Kubernetes' horizontal pod autoscaler: every ``autoscale_interval`` seconds the CPU used by each
replica's process tree is measured against its request (the pool's ``machineType`` vCPUs, at most this
machine's cores); the wanted count is ``ceil(replicas * usage / cpuTarget)``, clamped to the pool's
range. Replicas are added at once (each a real model-server process, started like the first one) and
removed only after usage has stayed low for ``scale_down_delay`` seconds. The autoscaler asks the pod
table for replicas and the deployer for new pods; it never touches a rollout in progress.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sandbox.control.deployer import Deployer
from sandbox.control.pods import Key, PodTable
from sandbox.control.resources import MACHINE_TYPES, pool_autoscaling, pool_machine
from sandbox.control.store import ResourceStore, now_rfc3339
from sandbox.errors import SandboxError
from sandbox.runtimes.base import PodInfo

DEFAULT_CPU_TARGET = 60
"""Percent; Vertex AI's default target when none is set."""
TOLERANCE = 0.1
"""Usage within 10% of the target changes nothing (Kubernetes' default tolerance)."""


def wanted_replicas(current: int, usage: float | None, target: float, low: int, high: int) -> int:
    """The replica count for ``usage`` percent of CPU per replica, clamped to ``[low, high]``."""
    wanted = current
    if usage is not None and current > 0 and abs(usage / target - 1) > TOLERANCE:
        wanted = math.ceil(current * usage / target)
    return max(low, min(high, wanted))


@dataclass
class _History:
    """Recent recommendations of one DeployedModel: scale-down follows the highest of the delay window."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)

    def stabilised(self, now: float, wanted: int, window: float) -> int:
        self.recommendations = [(t, n) for t, n in self.recommendations if now - t < window]
        self.recommendations.append((now, wanted))
        return max(n for _, n in self.recommendations)


class CpuMeter:
    """CPU seconds of each pod's process tree between two readings."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float]] = {}

    def usage(self, pods: list[PodInfo], cpus: float) -> float | None:
        """Average percent of ``cpus`` used per replica since the last reading; None before two readings."""
        now, shares = time.monotonic(), []
        for pod in pods:
            seconds = pod.cpu_seconds()
            if seconds is None:
                continue
            before = self._last.get(pod.name)
            self._last[pod.name] = (seconds, now)
            if before is not None and now > before[1]:
                shares.append((seconds - before[0]) / (now - before[1]) / cpus * 100)
        return sum(shares) / len(shares) if shares else None

    def forget(self, names: list[str]) -> None:
        for name in names:
            self._last.pop(name, None)


class Autoscaler:
    """One background thread for the sandbox; scaling actions run on a small pool, one at a time per model."""

    def __init__(
        self,
        store: ResourceStore,
        pods: PodTable,
        deployer: Deployer,
        interval: float,
        scale_down_delay: float,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self.store = store
        self.pods = pods
        self.deployer = deployer
        self.interval = interval
        self.scale_down_delay = scale_down_delay
        self.log = log
        self.meter = CpuMeter()
        self._history: dict[Key, _History] = {}
        self._busy: set[Key] = set()
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._actions = ThreadPoolExecutor(max_workers=2, thread_name_prefix="autoscale")
        self._thread = threading.Thread(target=self._run, name="autoscaler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._actions.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for key in list(self.pods.all()):
                try:
                    self.tick(key)
                except Exception as exc:  # a bug here must not stop scaling of the other models
                    self.log(f"autoscaler: {key[1]}/{key[2]}: {type(exc).__name__}: {exc}")

    def tick(self, key: Key) -> None:
        """Measure one DeployedModel and start scaling it if its replica count should change."""
        dm = self.store.get(key)
        generation = self.pods.generation(key)
        if dm is None or generation is None or generation != dm["metadata"]["generation"] or self._is_busy(key):
            return  # deleted, or a rollout is under way: the deployer owns it
        pods, restarting = self.pods.replicas(key)
        if restarting:
            return  # a replica died and waits for its restart: the deployer owns it until it runs again
        if self.pods.not_ready(key):
            return  # a silent replica uses no CPU: measured now, it would remove a replica that answers
        pool = self._pool(dm, key[1])
        scaling, machine = pool_autoscaling(pool), pool_machine(pool)
        target = scaling.cpuTarget or DEFAULT_CPU_TARGET
        high = max(scaling.maxReplica or scaling.minReplica, scaling.minReplica)
        cpus = min(MACHINE_TYPES[machine.machineType], os.cpu_count() or 1)
        usage = self.meter.usage(pods, cpus)
        wanted = wanted_replicas(len(pods), usage, target, scaling.minReplica, high)
        now = time.monotonic()
        recommended = self._history.setdefault(key, _History()).stabilised(now, wanted, self.scale_down_delay)
        desired = wanted if wanted >= len(pods) else min(len(pods), recommended)
        self._record(key, dm.get("status") or {}, usage, target, desired)
        if desired != len(pods):
            self._mark_busy(key)
            self._actions.submit(self._scale, key, generation, len(pods), desired, usage, target)

    def _scale(self, key: Key, generation: int, current: int, desired: int, usage: float | None, target: int) -> None:
        try:
            why = f"CPU {usage:.0f}% per replica, target {target}%" if usage is not None else "pool range"
            self.log(f"autoscaler: DeployedModel {key[1]}/{key[2]}: {current} -> {desired} replicas ({why})")
            if desired > current:
                try:
                    new = self.deployer.start_pods(key, generation, desired - current)
                except SandboxError as exc:
                    self.log(f"autoscaler: could not add a replica to {key[2]}: {exc.message}")
                    return
                if not self.deployer.add_replicas(key, new, generation):
                    self.pods.retire(new)
                    return
                for pod in new:
                    seconds = self.deployer.startup_seconds.get(pod.name)
                    self.log(f"autoscaler: replica {pod.name} serves {key[2]} after a {seconds}s cold start")
            else:
                newest = [p.name for p in self.pods.get(key)][desired:]
                self.pods.retire(self.pods.remove(key, newest))
                self.meter.forget(newest)
            self.deployer.record_replicas(key, desired)
            self._update_status(key, lastScaleTime=now_rfc3339())
        finally:
            with self._busy_lock:
                self._busy.discard(key)

    def _pool(self, dm: dict[str, Any], namespace: str) -> dict[str, Any] | None:
        ref = dm["spec"].get("resourcePoolRef")
        return self.store.get(("ResourcePool", ref.get("namespace") or namespace, ref["name"])) if ref else None

    def _is_busy(self, key: Key) -> bool:
        with self._busy_lock:
            return key in self._busy

    def _mark_busy(self, key: Key) -> None:
        with self._busy_lock:
            self._busy.add(key)

    def _record(self, key: Key, status: dict[str, Any], usage: float | None, target: int, desired: int) -> None:
        """Write the measurement into status when it changed (a busy sandbox writes little)."""
        measured = {"cpuTarget": target, "cpuUsagePercent": None if usage is None else round(usage)}
        counts = {"desiredReplicas": desired, "currentReplicas": len(self.pods.get(key))}
        known = status.get("autoscaling") or {}
        if any(known.get(k) != v for k, v in measured.items()) or any(status.get(k) != v for k, v in counts.items()):
            self._update_status(key, **counts, **measured)

    def _update_status(self, key: Key, **facts: Any) -> None:
        def change(status: dict[str, Any]) -> dict[str, Any]:
            for name in ("desiredReplicas", "currentReplicas"):
                if name in facts:
                    status[name] = facts.pop(name)
            status["autoscaling"] = {**(status.get("autoscaling") or {}), **facts}
            return status

        self.store.update_status(key, change)
