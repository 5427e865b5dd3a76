"""Which model-server pods serve which DeployedModel, recorded on disk so a restarted control plane can clean up."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

from sandbox.process import ProcessRecord, stop_group
from sandbox.runtimes.base import PodInfo, stop_pod

Key = tuple[str, str, str]


class PodTable:
    """Active pods per DeployedModel key; thread-safe; one JSON file per DeployedModel.

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

    def stop_loose(self) -> int:
        """Stop pods outside the table: started but never added, or taken out and not yet stopped."""
        stopped = 0
        for path in self._spawning.glob("*.json") if self._spawning.is_dir() else []:
            record = ProcessRecord.load(path)
            if record is not None:
                stopped += record.is_alive()
                stop_group(record)  # also removes its scratch folder
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

    def remove(self, key: Key, names: list[str]) -> list[PodInfo]:
        """Take some replicas out; they are held loose until the caller stops and releases them."""
        with self._lock:
            taken = [p for p in self._active.get(key, []) if p.name in names]
            self._hold(taken)
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
            self._generation.pop(key, None)
            self._path(key).unlink(missing_ok=True)
            return self._active.pop(key, [])

    def retire(self, pods: list[PodInfo]) -> None:
        """Stop pods taken out of the table (by :meth:`pop` or :meth:`set`) and drop their loose records."""
        for pod in pods:
            stop_pod(pod)
            self.release(pod.name)

    def get(self, key: Key) -> list[PodInfo]:
        with self._lock:
            return list(self._active.get(key, []))

    def generation(self, key: Key) -> int | None:
        with self._lock:
            return self._generation.get(key)

    def pick(self, key: Key) -> PodInfo | None:
        """Round-robin over the live replicas of one DeployedModel."""
        with self._lock:
            pods = self._active.get(key, [])
            if not pods:
                return None
            return pods[next(self._counter) % len(pods)]

    def all(self) -> dict[Key, list[PodInfo]]:
        with self._lock:
            return {k: list(v) for k, v in self._active.items()}

    def stop_orphans(self) -> int:
        """Stop pods recorded by a previous control plane that died without cleaning up."""
        stopped = self.stop_loose()
        for path in self.root.glob("*.json"):
            try:
                data = json.loads(path.read_text())
                pods = [PodInfo.from_dict(p) for p in data.get("pods", [])]
            except (OSError, ValueError, TypeError, KeyError):
                pods = []
            for pod in pods:
                if pod.process.is_alive():
                    stop_pod(pod)
                    stopped += 1
            path.unlink(missing_ok=True)
        return stopped
