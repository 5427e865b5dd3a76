"""Resource storage for the control plane: in memory, written through to JSON files so it survives restarts."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Key = tuple[str, str, str]  # kind, namespace, name
log = logging.getLogger("sandbox.state")


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ResourceStore:
    """Thread-safe; every change is persisted (atomic rename) before it is visible to readers, and a change
    that cannot be written is not made."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._items: dict[Key, dict[str, Any]] = {}
        self._load()

    def _path(self, key: Key) -> Path:
        kind, namespace, name = key
        return self.root / kind / namespace / f"{name}.json"

    def _load(self) -> None:
        for path in self.root.glob("*/*/*.json"):
            try:
                item = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            meta = item.get("metadata", {})
            self._items[(item["kind"], meta["namespace"], meta["name"])] = item

    def _persist(self, key: Key, item: dict[str, Any] | None) -> None:
        path = self._path(key)
        if item is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(item, indent=2, sort_keys=True))
        tmp.replace(path)

    def get(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(key)
            return copy.deepcopy(item) if item is not None else None

    def peek(self, key: Key) -> dict[str, Any] | None:
        """The stored item itself, not a copy, for hot-path readers that never change it (a change replaces
        the item or its ``status`` as a whole, so what a reader holds stays consistent)."""
        return self._items.get(key)

    def exists(self, key: Key) -> bool:
        with self._lock:
            return key in self._items

    def list(self, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(item)
                for (k, ns, _), item in sorted(self._items.items())
                if (kind is None or k == kind) and (namespace is None or ns == namespace)
            ]

    def keys(self, kind: str | None = None) -> Iterator[Key]:
        with self._lock:
            return iter([key for key in self._items if kind is None or key[0] == kind])

    def apply(self, resource: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or update from a validated manifest; returns (stored, changed). Status is kept."""
        meta = resource["metadata"]
        key: Key = (resource["kind"], meta["namespace"], meta["name"])
        with self._lock:
            current = self._items.get(key)
            if current is None:
                stored = copy.deepcopy(resource)
                stored["metadata"].update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=now_rfc3339())
                stored["status"] = {}
                changed = True
            else:
                stored = copy.deepcopy(current)
                changed = stored["spec"] != resource["spec"] or stored["metadata"].get("annotations") != meta.get(
                    "annotations"
                )
                stored["spec"] = copy.deepcopy(resource["spec"])
                stored["metadata"]["labels"] = meta.get("labels", {})
                stored["metadata"]["annotations"] = meta.get("annotations", {})
                if changed:
                    stored["metadata"]["generation"] = int(stored["metadata"].get("generation", 1)) + 1
            self._persist(key, stored)  # on disk first: a failed write changes nothing
            self._items[key] = stored
            if changed:
                verb = "created" if current is None else "configured"
                log.info("%s %s generation %s: %s", verb, _name(key), stored["metadata"]["generation"], _spec(stored))
            return copy.deepcopy(stored), changed

    def set_status(self, key: Key, status: dict[str, Any]) -> None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return
            before = _condition(item.get("status") or {})
            updated = {**item, "status": copy.deepcopy(status)}
            self._persist(key, updated)
            self._items[key] = updated
            after = _condition(status)
            if after != before and after[0]:
                dm_id = status.get("deployedModelID")
                log.info(
                    "%s%s %s -> %s: %s",
                    _name(key),
                    f" (deployedModelId {dm_id})" if dm_id else "",
                    before[0] or "new",
                    after[0],
                    after[1],
                )

    def update_status(self, key: Key, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Change part of a status atomically: ``change`` gets a copy of the current status, returns the new one."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return
            item["status"] = change(copy.deepcopy(item.get("status") or {}))
            self._persist(key, item)

    def delete(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._persist(key, None)
                del self._items[key]
                log.info("deleted %s", _name(key))
            return item


def _name(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}"


def _condition(status: dict[str, Any]) -> tuple[str, str]:
    """(reason, message) of a status' primary (or first) condition; ("", "") if it has none."""
    cond: dict[str, Any] = status.get("primaryCondition") or next(iter(status.get("conditions") or []), {})
    return str(cond.get("reason", "")), str(cond.get("message", ""))


def _spec(item: dict[str, Any]) -> str:
    """A one-line summary of what a change asks for, for the log."""
    spec = item.get("spec") or {}
    if item["kind"] == "DeployedModel":
        model = spec.get("modelSpec") or {}
        image = (model.get("modelContainerSpec") or {}).get("imageURI", "?")
        return f"artifact {model.get('artifactLocation', '?')} on {image}"
    if item["kind"] == "Endpoint":
        routes = [
            f"{d.get('serviceRef', {}).get('name', '?')} {d.get('trafficPercentage', '?')}%"
            for d in spec.get("destinations") or []
        ]
        return "traffic " + (", ".join(routes) or "none")
    replicas = ((spec.get("dedicatedResources") or {}).get("autoscaling") or {}).get("minReplica", "?")
    return f"{replicas} replica(s)"
