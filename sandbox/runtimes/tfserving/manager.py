"""The model manager: watches base paths, loads/unloads versions, resolves requests to servables.

Mirrors TF Serving's ServerCore + FileSystemStoragePathSource + AspiredVersionsManager for the
parts a user can observe: version folders, version policies, labels, states and their errors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors, tflog, warmup
from .config import ModelConfig
from .loader import Servable, load_servable

_SOURCE = "tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc"
_HARNESS = "tensorflow_serving/core/loader_harness.cc"

LoadFn = Callable[[str, int, str], Servable]
UNLOAD_GRACE_SECONDS = 5.0


@dataclass
class VersionState:
    """What ``GetModelStatus`` reports for one version."""

    version: int
    state: str = "START"  # START, LOADING, AVAILABLE, UNLOADING, END
    error: errors.ServingError | None = None
    servable: Servable | None = None
    stamp: float = 0.0


@dataclass
class ModelState:
    config: ModelConfig
    versions: dict[int, VersionState] = field(default_factory=dict)
    scan_problem: str = ""
    active: bool = True


def _stamp(version_dir: str) -> float:
    try:
        return max(os.stat(os.path.join(version_dir, n)).st_mtime for n in os.listdir(version_dir))
    except (OSError, ValueError):
        return 0.0


def _default_load(name: str, version: int, path: str) -> Servable:
    servable = load_servable(name, version, path)
    try:
        warmup.replay(servable)
    except Exception:
        servable.close()
        raise
    return servable


class ModelManager:
    """Keeps every configured model's versions in line with its base path; thread-safe reads."""

    def __init__(self, configs: list[ModelConfig], poll_seconds: float = 1.0, load: LoadFn = _default_load) -> None:
        self.poll_seconds = poll_seconds
        self._load = load
        self._models: dict[str, ModelState] = {}
        self._lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.set_configs(configs)

    # configuration -------------------------------------------------------------------------
    def set_configs(self, configs: list[ModelConfig]) -> None:
        """Apply a new model list (server_core.cc ``ReloadConfig``); removed models get unloaded."""
        tflog.info("tensorflow_serving/model_servers/server_core.cc:467", "Adding/updating models.")
        with self._lock:
            wanted = {c.name: c for c in configs}
            for name, m in self._models.items():
                if name not in wanted and m.active:
                    m.active = False
                    for v in list(m.versions.values()):
                        self._unload(name, v)
            for c in configs:
                tflog.info("tensorflow_serving/model_servers/server_core.cc:596", f" (Re-)adding model: {c.name}")
                existing = self._models.get(c.name)
                if existing is None:
                    self._models[c.name] = ModelState(c)
                else:
                    existing.config, existing.active = c, True

    # polling -------------------------------------------------------------------------------
    def _scan(self, m: ModelState) -> list[int] | None:
        name, base = m.config.name, m.config.base_path
        if not os.path.isdir(base):
            m.scan_problem = (
                f"FileSystemStoragePathSource encountered a file-system access error: Could not find base path "
                f"{base} for servable {name} with error NOT_FOUND: {base} not found"
            )
            tflog.error(f"{_SOURCE}:353", m.scan_problem)
            return None
        found = [int(c) for c in os.listdir(base) if c.isdigit() and os.path.isdir(os.path.join(base, c))]
        if not found:
            m.scan_problem = (
                f"No versions of servable {name} found under base path {base}. "
                "Did you forget to name your leaf directory as a number (eg. '/1/')?"
            )
            tflog.warning(f"{_SOURCE}:267", m.scan_problem)
            return []
        m.scan_problem = ""
        return found

    def poll_once(self) -> None:
        """One pass of the file-system source: load newly aspired versions, then unload the rest."""
        with self._poll_lock:
            self._poll_once()

    def _poll_once(self) -> None:
        with self._lock:
            models = [m for m in self._models.values() if m.active]
        for m in models:
            found = self._scan(m)
            if found is None:
                continue
            aspired = m.config.policy.select(found)
            for v in sorted(aspired, reverse=True):
                path = os.path.join(m.config.base_path, str(v))
                cur = m.versions.get(v)
                if cur is None or (cur.state == "END" and (cur.error is None or _stamp(path) != cur.stamp)):
                    self._load_version(m, v, path)
            for vs in list(m.versions.values()):
                if vs.version not in aspired and vs.state == "AVAILABLE":
                    self._unload(m.config.name, vs)

    def _load_version(self, m: ModelState, version: int, path: str) -> None:
        name = m.config.name
        sid = tflog.servable_id(name, version)
        vs = VersionState(version, "LOADING", stamp=_stamp(path))
        m.versions[version] = vs
        tflog.info("tensorflow_serving/core/basic_manager.cc:740",
                   f"Successfully reserved resources to load servable {sid}")
        tflog.info(f"{_HARNESS}:66", f"Approving load for servable version {sid}")
        tflog.info(f"{_HARNESS}:74", f"Loading servable version {sid}")
        try:
            servable = self._load(name, version, path)
        except Exception as exc:
            err = errors.from_exception(exc)
            tflog.error("tensorflow_serving/util/retrier.cc:40",
                        f"Loading servable: {sid} failed: {err.to_string()}")
            vs.error, vs.state = err, "END"
            return
        vs.servable, vs.state = servable, "AVAILABLE"
        tflog.info(f"{_HARNESS}:95", f"Successfully loaded servable version {sid}")

    def _unload(self, name: str, vs: VersionState) -> None:
        if vs.servable is None:
            vs.state = "END"
            return
        sid = tflog.servable_id(name, vs.version)
        vs.state = "UNLOADING"
        tflog.info(f"{_HARNESS}:137", f"Quiescing servable version {sid}")
        tflog.info(f"{_HARNESS}:144", f"Done quiescing servable version {sid}")
        tflog.info(f"{_HARNESS}:119", f"Unloading servable version {sid}")
        servable, vs.servable = vs.servable, None
        vs.state = "END"
        # requests already routed to this version finish first (TF Serving waits for its handles)
        closer = threading.Timer(UNLOAD_GRACE_SECONDS, servable.close)
        closer.daemon = True
        closer.start()
        tflog.info(f"{_HARNESS}:127", f"Done unloading servable version {sid}")

    def start(self, extra: Callable[[], None] | None = None) -> None:
        """Poll every ``poll_seconds`` in a daemon thread (``extra`` runs each round, e.g. config reload)."""

        def loop() -> None:
            while not self._stop.wait(self.poll_seconds):
                try:
                    if extra is not None:
                        extra()
                    self.poll_once()
                except Exception as exc:  # keep polling, like the real source
                    tflog.error(f"{_SOURCE}:0", f"polling failed: {exc!r}")

        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=loop, name="fs-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # lookups -------------------------------------------------------------------------------
    def _label_version(self, name: str, label: str) -> int:
        m = self._models.get(name)
        if m is None or label not in m.config.labels:
            raise errors.invalid_argument(f"Unrecognized servable version label: {label}")
        return m.config.labels[label]

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request is routed to; NOT_FOUND in TF Serving's words otherwise."""
        if label:
            version = self._label_version(name, label)
        m = self._models.get(name)
        versions = m.versions if m is not None and m.active else {}
        if version is None:
            ready = [v for v in versions.values() if v.state == "AVAILABLE" and v.servable is not None]
            if ready:
                best = max(ready, key=lambda v: v.version).servable
                assert best is not None
                return best
            raise errors.not_found(f"Servable not found for request: Latest({name})")
        vs = versions.get(version)
        if vs is not None and vs.state == "AVAILABLE" and vs.servable is not None:
            return vs.servable
        raise errors.not_found(f"Servable not found for request: Specific({name}, {version})")

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionState]:
        """Version states, newest first (get_model_status_impl.cc)."""
        if label:
            version = self._label_version(name, label)
        m = self._models.get(name)
        versions = dict(m.versions) if m is not None else {}
        if version is not None:
            if version not in versions:
                raise errors.not_found(f"Could not find version {version} of model {name}")
            return [versions[version]]
        if not versions:
            hint = f". {m.scan_problem}" if m is not None and m.active and m.scan_problem else ""
            raise errors.not_found(f"Could not find any versions of model {name}{hint}")
        return [versions[v] for v in sorted(versions, reverse=True)]
