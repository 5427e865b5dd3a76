"""Which model-server pods serve which DeployedModel, recorded on disk so a restarted control plane can clean up."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

from sandbox.process import ProcessRecord, stop_all
from sandbox.runtimes.base import TERMINATION_GRACE, PodInfo

Key = tuple[str, str, str]


class PodTable:
    """Active pods per DeployedModel key; thread-safe; one JSON file per DeployedModel.

    An active pod is in traffic unless its readiness probe took it out (:meth:`mark`): :meth:`pick` and
    :meth:`ready` leave such pods out; :meth:`get` lists them all.

    A pod that died keeps its replica slot (:meth:`died`) until its restart fills it (:meth:`refill`), as a
    Kubernetes container restarts inside its pod: whoever counts replicas (:meth:`replicas`, the autoscaler)
    sees one restarting, never one missing.

    A pod outside the table (still starting, or taken out and being stopped) keeps a loose record in
    ``spawning/`` until :meth:`release`, so a control plane that dies at any moment leaves nothing that
    the next ``down`` or ``up`` cannot stop (:meth:`stop_orphans`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._active: dict[Key, list[PodInfo]] = {}
        self._generation: dict[Key, int] = {}
        self._not_ready: dict[str, str] = {}
        """Pod name -> why its readiness probe took it out of traffic."""
        self._restarting: dict[Key, set[str]] = {}
        """Names of the replicas that died and wait for their restart (their slots), per DeployedModel."""
        self._counter = itertools.count()

    @property
    def _spawning(self) -> Path:
        return self.root / "spawning"

    def spawn_record(self, pod_name: str) -> Path:
        """Where a starting pod's process record goes until the pod is in the table (see :meth:`release`)."""
        self._spawning.mkdir(exist_ok=True)
        return self._spawning / f"{pod_name}.json"

    def _hold(self, pods: list[PodInfo]) -> None:
        for pod in pods:
            pod.process.save(self.spawn_record(pod.name))

    def release(self, pod_name: str) -> None:
        """The pod is in the table, or stopped: its loose record is no longer needed."""
        (self._spawning / f"{pod_name}.json").unlink(missing_ok=True)

    def stop_loose(self) -> list[str]:
        """Stop pods outside the table (started but never added, or taken out and not yet stopped), all at
        once; returns the names of those that were running."""
        paths = list(self._spawning.glob("*.json")) if self._spawning.is_dir() else []
        records = (r for r in map(ProcessRecord.load, paths) if r is not None)
        stopped = stop_all(records, TERMINATION_GRACE)  # also removes their scratch folders
        for path in paths:
            path.unlink(missing_ok=True)
        return stopped

    def _path(self, key: Key) -> Path:
        return self.root / f"{key[1]}__{key[2]}.json"

    def set(self, key: Key, pods: list[PodInfo], generation: int) -> list[PodInfo]:
        """Make ``pods`` the active set; returns the previous set, held loose until the caller stops and
        releases them."""
        with self._lock:
            previous = self._active.get(key, [])
            self._hold(previous)
            self._forget_readiness(previous)
            self._restarting.pop(key, None)  # restarts of the previous set are abandoned
            self._active[key] = pods
            self._generation[key] = generation
            self._write(key)
            return previous

    def add(self, key: Key, pods: list[PodInfo], generation: int) -> bool:
        """Add replicas to a DeployedModel serving ``generation``; False (nothing added) if it serves another."""
        with self._lock:
            if self._generation.get(key) != generation or key not in self._active:
                return False
            self._active[key] = [*self._active[key], *pods]
            self._write(key)
        for pod in pods:
            self.release(pod.name)
        return True

    def died(self, key: Key, pod: PodInfo) -> bool:
        """This very pod exited: take it out of traffic, keeping its slot for its restart; False (nothing
        changed) if it was no longer an active replica (stopped on purpose)."""
        with self._lock:
            if not self._holds(key, pod):
                return False
            self._hold([pod])
            self._forget_readiness([pod])
            self._active[key] = [p for p in self._active[key] if not _same(p, pod)]
            self._restarting.setdefault(key, set()).add(pod.name)
            self._write(key)
            return True

    def refill(self, key: Key, pod: PodInfo, generation: int) -> bool:
        """Put a restarted pod in the slot its predecessor left; False (nothing added) if that slot is gone:
        the DeployedModel serves another generation, or was deleted, or the slot was filled already."""
        with self._lock:
            if self._generation.get(key) != generation or pod.name not in self._restarting.get(key, ()):
                return False
            self._restarting[key].discard(pod.name)
            self._active[key] = [*self._active.get(key, []), pod]
            self._write(key)
        self.release(pod.name)
        return True

    def replicas(self, key: Key) -> tuple[list[PodInfo], frozenset[str]]:
        """The active replicas and the names of those restarting, read at one moment."""
        with self._lock:
            return list(self._active.get(key, [])), frozenset(self._restarting.get(key, ()))

    def remove(self, key: Key, names: list[str]) -> list[PodInfo]:
        """Take some replicas out; they are held loose until the caller stops and releases them."""
        with self._lock:
            taken = [p for p in self._active.get(key, []) if p.name in names]
            self._hold(taken)
            self._forget_readiness(taken)
            self._active[key] = [p for p in self._active.get(key, []) if p.name not in names]
            self._write(key)
            return taken

    def _write(self, key: Key) -> None:
        pods = [p.to_dict() for p in self._active.get(key, [])]
        self._path(key).write_text(json.dumps({"generation": self._generation.get(key), "pods": pods}))

    def pop(self, key: Key) -> list[PodInfo]:
        """Take a DeployedModel's pods out; they are held loose until the caller stops and releases them."""
        with self._lock:
            self._hold(self._active.get(key, []))
            self._forget_readiness(self._active.get(key, []))
            self._restarting.pop(key, None)
            self._generation.pop(key, None)
            self._path(key).unlink(missing_ok=True)
            return self._active.pop(key, [])

    def retire(self, pods: list[PodInfo]) -> None:
        """Stop pods taken out of the table (by :meth:`pop`, :meth:`set` or :meth:`remove`), in parallel, and
        drop their loose records."""
        stop_all((pod.process for pod in pods), TERMINATION_GRACE)
        for pod in pods:
            self.release(pod.name)

    def get(self, key: Key) -> list[PodInfo]:
        with self._lock:
            return list(self._active.get(key, []))

    def generation(self, key: Key) -> int | None:
        with self._lock:
            return self._generation.get(key)

    def pick(self, key: Key) -> PodInfo | None:
        """Round-robin over the replicas of one DeployedModel that are in traffic."""
        with self._lock:
            pods = self._ready(key)
            if not pods:
                return None
            return pods[next(self._counter) % len(pods)]

    def ready(self, key: Key) -> list[PodInfo]:
        """The replicas in traffic: running, and not taken out by their readiness probe."""
        with self._lock:
            return self._ready(key)

    def _ready(self, key: Key) -> list[PodInfo]:
        return [p for p in self._active.get(key, []) if p.name not in self._not_ready]

    def not_ready(self, key: Key) -> dict[str, str]:
        """Running replicas out of traffic, by name, with the reason."""
        with self._lock:
            return {p.name: self._not_ready[p.name] for p in self._active.get(key, []) if p.name in self._not_ready}

    def holds(self, key: Key, pod: PodInfo) -> bool:
        """This very pod (not a restarted one of the same name) is an active replica of ``key``."""
        with self._lock:
            return self._holds(key, pod)

    def _holds(self, key: Key, pod: PodInfo) -> bool:
        return any(_same(p, pod) for p in self._active.get(key, []))

    def mark(self, key: Key, pod: PodInfo, reason: str | None) -> bool:
        """Take an active pod out of traffic (``reason``) or put it back (None); False if it is not active."""
        with self._lock:
            if not self._holds(key, pod):
                return False
            if reason is None:
                self._not_ready.pop(pod.name, None)
            else:
                self._not_ready[pod.name] = reason
            return True

    def _forget_readiness(self, pods: list[PodInfo]) -> None:
        for pod in pods:
            self._not_ready.pop(pod.name, None)

    def all(self) -> dict[Key, list[PodInfo]]:
        with self._lock:
            return {k: list(v) for k, v in self._active.items()}

    def stop_orphans(self) -> list[str]:
        """Stop pods recorded by a previous control plane that died without cleaning up, all at once; returns
        the names of those that were running."""
        stopped = self.stop_loose()
        paths = list(self.root.glob("*.json"))
        pods: list[PodInfo] = []
        for path in paths:
            try:
                pods += [PodInfo.from_dict(p) for p in json.loads(path.read_text()).get("pods", [])]
            except (OSError, ValueError, TypeError, KeyError):
                pass
        stopped += stop_all((pod.process for pod in pods), TERMINATION_GRACE)
        for path in paths:
            path.unlink(missing_ok=True)
        return stopped


def _same(a: PodInfo, b: PodInfo) -> bool:
    """The same pod process (a restarted pod keeps its name, not its process)."""
    return a.name == b.name and a.process.pid == b.process.pid
