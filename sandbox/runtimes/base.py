"""What every model server "pod" does: stage an artifact like the prebuilt image, start, get ready, predict, stop.

A pod is one model-server process serving one DeployedModel, the way GDC runs one serving pod
per DeployedModel replica set. Subclasses override :meth:`stage`, :meth:`argv`, :meth:`wait_ready`
and :meth:`predict_path`; the rest has working defaults.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from sandbox.client import http_call
from sandbox.errors import DeployFailed
from sandbox.images import Image, nearest_native
from sandbox.process import ManagedProcess, ProcessRecord, free_port, stop_group, tree_cpu_seconds
from sandbox.runtimes import envs
from sandbox.runtimes.serverlog import failure_report

if TYPE_CHECKING:
    from sandbox.runtimes.forkserver import ForkServers

FRAMEWORK_NAMES = {"tf": "TensorFlow", "torch": "PyTorch"}

TERMINATION_GRACE = 2
"""Seconds a model server gets to exit after SIGTERM before SIGKILL, on every backend: when a pod is stopped,
rolled out, scaled down or killed by its liveness probe (a container pod: the timeout of its ``docker stop``).
Kubernetes' ``terminationGracePeriodSeconds`` defaults to 30; a model server keeps nothing worth the wait, a hung
one (the liveness probe's case) ignores SIGTERM anyway, and TensorFlow's own teardown takes seconds of CPU per pod
on a busy machine."""


@dataclass
class PodSpec:
    """Everything needed to start one model server."""

    name: str
    """Unique pod name, e.g. ``dm-my-model-7f3a``; also its folder name."""
    image: Image
    artifact_dir: Path
    """The downloaded version folder (what the user uploaded to MODEL_ID/MODEL_VERSION_ID/)."""
    pod_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    spawn_record: Path | None = None
    """Where the process record is written the moment the server starts, so that it can be stopped even
    if the control plane goes away while the pod is still loading."""
    forkservers: ForkServers | None = None
    """Warm parents this pod's server may be forked from instead of starting cold (runtimes that support it)."""


@dataclass
class PodInfo:
    """A pod as recorded on disk, enough for another process to reach and stop it."""

    name: str
    framework: str
    image: str
    base_url: str
    health_path: str
    predict_path: str
    process: ProcessRecord
    ports: dict[str, int]
    container_pid: int | None = None
    """A container pod's init process (the engine, not the pod's process, is its parent); None for local pods."""

    def cpu_seconds(self) -> float | None:
        """CPU seconds used so far by the processes that run the model server (a container pod's: those of
        its container); None when they are gone."""
        return tree_cpu_seconds(self.container_pid or self.process.pid)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["process"] = self.process.__dict__
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PodInfo:
        data = dict(data)
        legacy_tmp = data.pop("tmp_dir", "")  # state written before ProcessRecord.scratch_dir existed
        data["process"] = ProcessRecord(**{"scratch_dir": legacy_tmp, **data["process"]})
        return cls(**data)


class ModelServerPod:
    """Base class of the runtimes in :data:`sandbox.runtimes.registry.RUNTIMES`."""

    framework: str = ""
    health_path: str = "/"
    predict_path: str = "/"
    parameters_ignored_by: str = ""
    """Why the image's model server ignores a ``:predict`` body's ``"parameters"`` (empty: it reads them)."""
    process_grace: float = 0.0
    """Seconds the pod's process needs after SIGTERM when that is more than :data:`TERMINATION_GRACE`."""

    def __init__(self, spec: PodSpec) -> None:
        self.spec = spec
        self.ports: dict[str, int] = {}
        self.process: ManagedProcess | None = None
        self.session = requests.Session()
        self._tmp_dir: Path | None = None
        self._python: Path | None = None

    # -- the image's runtime environment -------------------------------------------------------
    @classmethod
    def env_spec(cls, image: Image) -> envs.EnvSpec | None:
        """The Python environment that runs ``image`` (None: the sandbox's own interpreter). Override."""
        return None

    @classmethod
    def prepare(cls, image: Image, progress: envs.Progress = print) -> Path:
        """The interpreter of ``image``'s runtime, created first (with ``progress`` messages) when missing."""
        try:
            spec = cls.env_spec(image)
            return Path(sys.executable) if spec is None else envs.ensure(spec, envs.cache_dir(), progress)
        except envs.RuntimeUnavailable as exc:
            raise DeployFailed(
                f"the {image.name} runtime is not available: {exc}",
                code="deploy.RuntimeUnavailable",
                hint="`gdc-sandbox runtimes install` creates the runtimes (or `--from DIR` with no network); "
                "`gdc-sandbox runtimes list` shows what is installed",
            ) from None

    def python(self) -> Path:
        """The interpreter that runs this pod's model server (its image's runtime; created on first use)."""
        if self._python is None:
            progress = self.spec.extra.get("progress") or (lambda msg: print(msg, file=sys.stderr, flush=True))
            self._python = self.prepare(self.spec.image, progress)
        return self._python

    # -- hooks -------------------------------------------------------------------------------
    @classmethod
    def refusal(cls, image: Image) -> DeployFailed | None:
        """Why this runtime cannot serve ``image`` at all (None: it can). Checked before anything is fetched."""
        if image.native:
            return None
        near = nearest_native(image)
        return DeployFailed(
            f"image {image.name} runs {FRAMEWORK_NAMES[image.framework]} {image.version}, which has no build for this "
            "Python, so the native sandbox cannot serve it",
            code="deploy.ImageNotSupported",
            hint=f"serve it on the nearest image the sandbox runs: deploy with --image {near.name} "
            f"({FRAMEWORK_NAMES[image.framework]} {near.version} loads models written by {image.version}); "
            f"`gdc-sandbox check --image {image.name} URI` still checks the ops against {image.name}; the Docker "
            "Compose backend runs the real image (GDC_SANDBOX_BACKEND=compose, or `make sandbox-up BACKEND=compose`; "
            "README: Docker Compose)",
        )

    def stage(self) -> None:
        """Lay the artifact out where the model server will read it. Override per runtime."""

    def argv(self) -> list[str]:
        """The command line of the model server. Must be overridden."""
        raise NotImplementedError

    @property
    def tmp_dir(self) -> Path:
        """A private temp folder. TorchServe puts Unix sockets there, whose paths must stay under ~100
        characters, so a deep pod folder falls back to a short folder in the system temp dir."""
        if self._tmp_dir is None:
            candidate = self.spec.pod_dir / "tmp"
            if len(str(candidate)) > 60:
                candidate = Path(tempfile.mkdtemp(prefix="gdcs-"))
            candidate.mkdir(parents=True, exist_ok=True)
            self._tmp_dir = candidate
        return self._tmp_dir

    def env(self) -> dict[str, str]:
        """Environment of the model server process; defaults to ours with a private TMPDIR."""
        return process_env(self.tmp_dir)

    def extra_logs(self) -> list[Path]:
        """Other logs that may hold the reason of a failure (besides ``spec.log_path``). Override."""
        return []

    def wait_ready(self, timeout: float) -> None:
        """Block until the model answers; raise :class:`DeployFailed` with the server's own words. Override."""

    def spawn(self) -> ManagedProcess:
        """Start the model server process (cold); runtimes with fork servers override this."""
        return ManagedProcess.start(
            self.spec.name,
            self.argv(),
            self.spec.log_path,
            env=self.env(),
            cwd=self.spec.pod_dir,
            record_path=self.spec.spawn_record,
            scratch_dir=self.tmp_dir,
            grace=self.process_grace,
        )

    @classmethod
    def warm_up(cls, forkservers: ForkServers, image: Image) -> bool:
        """Start the fork server of ``image`` if this runtime has them and the image's runtime is installed."""
        return False

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.spec.host}:{self.ports['http']}"

    def allocate_ports(self, *names: str) -> None:
        for name in names:
            self.ports[name] = free_port(self.spec.host)

    def start(self, timeout: float) -> PodInfo:
        """Stage, start and wait; on failure stop the process and re-raise.

        The ports a pod is given were free a moment before its server binds them; another process can take one
        in between (any outgoing connection may be given it). A server that exits saying so is started once more
        on other ports: that failure is the sandbox's, never the artifact's."""
        for attempt in (1, 2):
            if self.spec.pod_dir.exists():
                shutil.rmtree(self.spec.pod_dir)
            self.spec.pod_dir.mkdir(parents=True)
            self.stage()
            logged = _size(self.spec.log_path)
            self.process = self.spawn()
            try:
                self.wait_ready(timeout)
            except DeployFailed:
                if self.stop_failed(logged) and attempt == 1:
                    continue
                raise
            except BaseException:
                self.stop()
                raise
            return self.info()
        raise AssertionError("unreachable")

    def info(self) -> PodInfo:
        assert self.process is not None
        return PodInfo(
            name=self.spec.name,
            framework=self.framework,
            image=self.spec.image.name,
            base_url=self.base_url,
            health_path=self.health_path,
            predict_path=self.predict_path,
            process=self.process.record,
            ports=dict(self.ports),
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def stop_failed(self, logged: int) -> bool:
        """Stop a server that failed to become ready; True (and ready to start afresh) if it had exited because
        a port it was given was taken, as its log says after byte ``logged``."""
        gone = self.exited()
        self.stop()
        if gone and port_taken(self.spec.log_path, logged):
            self.process, self._tmp_dir = None, None
            return True
        return False

    def failed(self, message: str, reason: str = "ModelLoadFailed") -> DeployFailed:
        """A DeployFailed carrying the model server's exception lines and log tail."""
        return DeployFailed(
            message,
            code=f"deploy.{reason}",
            hint=f"the model server log is {self.spec.log_path}; `gdc-sandbox check` explains most artifact problems",
            details=failure_report(self.spec.log_path, also=self.extra_logs()),
        )

    def exited(self) -> bool:
        return self.process is not None and not self.process.is_alive()


PORT_TAKEN = "Address already in use"
"""What a model server's log says when a port it was given is taken (Python's OSError, Java's BindException)."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def port_taken(log: Path, since: int) -> bool:
    """Whether the log, from byte ``since`` on, says that a port was taken."""
    try:
        with open(log, "rb") as handle:
            handle.seek(since)
            return PORT_TAKEN.encode() in handle.read(1 << 20)
    except OSError:
        return False


def process_env(tmp: Path) -> dict[str, str]:
    """Our environment with ``tmp`` as the temp folder and unbuffered Python output: a model server's."""
    return {**os.environ, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp), "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Health:
    """One answer (or silence) of a pod's health route."""

    healthy: bool
    problem: str = ""
    """What went wrong, e.g. ``did not answer /ping within 1s``; empty when healthy."""
    timed_out: bool = False


def health_check(info: PodInfo, timeout: float) -> Health:
    """Ask the pod's health route, as the kubelet's ``httpGet`` probe does: an HTTP status from 200 to 399 within
    ``timeout`` seconds is healthy; silence, a refused connection or another status is not."""
    route = info.health_path
    try:
        answer = http_call("GET", info.base_url + route, timeout=timeout)
    except TimeoutError:
        return Health(False, f"did not answer {route} within {timeout:g}s", timed_out=True)
    except ConnectionRefusedError:
        return Health(False, f"refused the connection to {route} (nothing listens on {info.base_url})")
    except OSError as exc:
        return Health(False, f"did not answer {route}: {exc}")
    if 200 <= answer.status_code < 400:
        return Health(True)
    body = " ".join(answer.text.split())[:200]
    return Health(False, f"answered {route} with HTTP {answer.status_code}" + (f": {body}" if body else ""))


def stop_pod(info: PodInfo) -> None:
    """Stop a pod (possibly recorded by another process) and remove its temp folder."""
    stop_group(info.process)


def json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return {"error": response.text.strip()[:2000] or f"HTTP {response.status_code}"}
