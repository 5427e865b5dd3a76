"""The PyTorch prebuilt image: real TorchServe, configured as the image configures it.

The image runs TorchServe with ``service_envelope=json`` and loads ``model.mar`` from the artifact
folder; predictions go to ``/predictions/model``. Here each pod is one TorchServe with its own
ports, model store and temp folder; the archive is registered through the management API exactly
as a user would (``POST /models?url=model.mar``), so registration failures are TorchServe's own.
TorchServe (frontend launcher and Python workers) runs in the image's own environment: Python 3.9,
the image's torch and torchvision (:mod:`sandbox.runtimes.torch_envs`).
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from sandbox.errors import DeployFailed
from sandbox.images import Image
from sandbox.runtimes import envs, ts_cds
from sandbox.runtimes.base import ModelServerPod, PodInfo, json_or_text
from sandbox.runtimes.ts_cds import FRONTEND_VMARGS

if TYPE_CHECKING:
    from sandbox.runtimes.forkserver import ForkServers
    from sandbox.runtimes.ts_warm import WarmTorchServes

MODEL_NAME = "model"
MAR_NAME = "model.mar"
LAUNCHER = Path(__file__).with_name("ts_launch.py")
WORKER_LAUNCHER = Path(__file__).with_name("ts_worker.py")
ZYGOTE_SOCKET = "ts-zygote.sock"
NATIVE_STOP = "-Xrs"
"""JVM option of native pods: SIGTERM ends the frontend at once. Without it TorchServe's shutdown hook stops Netty
gracefully, which always waits out Netty's 2 s quiet period: 2 s more for every pod stopped (a failed deploy
reports its failure after its pod stopped). The workers get the same SIGTERM from the process group as before, and
nothing of a pod outlives it either way (snapshots are off: ``--ncs``). Containers keep TorchServe's shutdown."""


def config_properties(
    host: str, ports: dict[str, int], model_store: Path, workers: int, vmargs: str = FRONTEND_VMARGS
) -> str:
    """The ``config.properties`` of the prebuilt image, bound to loopback ports, with the JVM options ``vmargs``."""
    return "\n".join(
        [
            f"inference_address=http://{host}:{ports['http']}",
            f"management_address=http://{host}:{ports['management']}",
            f"metrics_address=http://{host}:{ports['metrics']}",
            f"grpc_inference_address={host}",
            f"grpc_management_address={host}",
            f"grpc_inference_port={ports['grpc']}",
            f"grpc_management_port={ports['grpc_management']}",
            f"model_store={model_store}",
            "service_envelope=json",
            "disable_token_authorization=true",
            "enable_model_api=true",
            "install_py_dep_per_model=false",
            f"default_workers_per_model={workers}",
            "default_response_timeout=120",
            "number_of_gpu=0",
            "enable_metrics_api=false",
            f"vmargs={vmargs}",
            "",
        ]
    )


def worker_python_script(python: str, logs: Path, zygote: Path | None = None) -> str:
    """A bash script that runs a TorchServe worker with ``python``, keeping a copy of its output in ``logs``.

    With a ``zygote`` socket, the worker is forked by the pod's worker zygote when it can be, else started
    cold by ``python`` itself (:mod:`sandbox.runtimes.ts_worker`). TorchServe copies a worker's output into its own
    log from reader threads that it stops as soon as the worker dies, so on a loaded machine the worker's last
    lines, the exception that explains a failed load, can be lost. The worker keeps its PID (``exec``) and
    TorchServe still reads everything. One file per stream, so that lines of the two never interleave mid-line.
    ``tee -p`` goes on copying into the file once TorchServe has closed its end: a plain ``tee`` would die of
    SIGPIPE there, with the exception still unwritten.
    """
    out, err = (shlex.quote(str(logs / f"worker-{stream}.log")) for stream in ("stdout", "stderr"))
    launcher = shlex.quote(python)
    if zygote is not None:
        launcher += f" -I -S {shlex.quote(str(WORKER_LAUNCHER))} {shlex.quote(str(zygote))}"
    return (
        "#!/usr/bin/env bash\n"
        "# TorchServe worker, with a copy of its output kept by gdc-sandbox\n"
        f'exec {launcher} "$@" > >(exec tee -p -a {out}) 2> >(exec tee -p -a {err} >&2)\n'
    )


@dataclass(frozen=True)
class ServerFiles:
    """The files of one TorchServe: ``folder`` holds them; ``seen_as`` is the path the server is given for it.

    A pod's server is given its own folder. A warm idle server (:mod:`sandbox.runtimes.ts_warm`) is given a link
    to its folder, so that the folder can become the adopting pod's folder (renamed) while the server runs.
    """

    folder: Path
    seen_as: Path
    tmp: Path
    """The server's temp folder (short: Unix sockets go there, among them the worker zygote's)."""

    @property
    def zygote(self) -> Path:
        return self.tmp / ZYGOTE_SOCKET

    def path(self, name: str) -> Path:
        """A file or folder as the server knows it."""
        return self.seen_as / name

    def write(self, python: Path, host: str, ports: dict[str, int], workers: int) -> None:
        """Lay out the config, an empty model store, the worker logs and the worker launcher. The JVM maps the
        frontend's classes from the runtime's CDS archive (:mod:`sandbox.runtimes.ts_cds`, made on first use)."""
        (self.folder / "model-store").mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        launcher = self.folder / "worker-python"
        launcher.write_text(worker_python_script(str(python), self.path("logs"), self.zygote))
        launcher.chmod(0o755)
        (self.folder / "config.properties").write_text(
            config_properties(host, ports, self.path("model-store"), workers, f"{ts_cds.vmargs(python)} {NATIVE_STOP}")
        )

    def argv(self, python: Path) -> list[str]:
        return [
            str(python),
            str(LAUNCHER),
            str(self.path("worker-python")),
            str(self.zygote),
            "--foreground",
            "--ts-config",
            str(self.path("config.properties")),
            "--model-store",
            str(self.path("model-store")),
            "--disable-token-auth",
            "--enable-model-api",
            "--ncs",
        ]

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (the process's environment) plus where TorchServe writes its own logs."""
        return {**base, "LOG_LOCATION": str(self.path("logs")), "METRICS_LOCATION": str(self.path("logs"))}


class TorchServePod(ModelServerPod):
    framework = "torch"
    health_path = "/ping"
    predict_path = f"/predictions/{MODEL_NAME}"
    parameters_ignored_by = 'TorchServe\'s json service envelope hands the handler only "instances"'
    PORTS = ("http", "management", "metrics", "grpc", "grpc_management")

    @classmethod
    def env_spec(cls, image: Image) -> envs.EnvSpec | None:
        from sandbox.runtimes.torch_envs import env_spec

        return env_spec(image.version)

    @property
    def files(self) -> ServerFiles:
        return ServerFiles(self.spec.pod_dir, self.spec.pod_dir, self.tmp_dir)

    @property
    def model_store(self) -> Path:
        return self.spec.pod_dir / "model-store"

    @property
    def worker_logs(self) -> Path:
        return self.spec.pod_dir / "logs"

    def extra_logs(self) -> list[Path]:
        return [self.worker_logs / "worker-stdout.log", self.worker_logs / "worker-stderr.log"]

    def stage(self) -> None:
        self.allocate_ports(*self.PORTS)
        self.files.write(self.python(), self.spec.host, self.ports, self.spec.workers)
        shutil.copytree(self.spec.artifact_dir, self.model_store, dirs_exist_ok=True)

    def argv(self) -> list[str]:
        return self.files.argv(self.python())

    def env(self) -> dict[str, str]:
        return self.files.env(super().env())

    # -- warm idle servers (sandbox.runtimes.ts_warm) -------------------------------------------
    def _standby(self) -> WarmTorchServes | None:
        return standby(self.spec.forkservers) if self.spec.forkservers is not None else None

    def start(self, timeout: float) -> PodInfo:
        """Adopt the idle TorchServe of this runtime when one fits, else start cold; then register the model.
        Either way a new idle server is started for the next pod."""
        warm = self._standby()
        try:
            adopted = self._adopt(warm, timeout) if warm is not None else None
            return adopted if adopted is not None else super().start(timeout)
        finally:
            if warm is not None and self._python is not None:
                warm.prepare(self._python, self.spec.host, self.spec.workers)

    def _adopt(self, warm: WarmTorchServes, timeout: float) -> PodInfo | None:
        """Become the idle server of this runtime and register the model (None: none fits, start cold)."""
        if _has_content(self.spec.log_path):
            return None  # a restarted pod keeps its log: its server starts cold and appends to it
        idle = warm.take(self.python(), self.spec.host, self.spec.workers)
        process = idle.become(self.spec, warm.release) if idle is not None else None
        if idle is None or process is None:
            return None
        self.process, self.ports, self._tmp_dir = process, dict(idle.ports), idle.scratch
        try:
            shutil.copytree(self.spec.artifact_dir, self.model_store, dirs_exist_ok=True)
            self.wait_ready(timeout)
        except DeployFailed:
            if self.stop_failed(0):  # the idle server lost a port it had picked: start cold
                return None
            raise
        except BaseException:
            self.stop()
            raise
        return self.info()

    @classmethod
    def warm_up(cls, forkservers: ForkServers, image: Image) -> bool:
        """Start the idle TorchServe of ``image``'s runtime if it is installed (never installs it)."""
        python = installed_python(image)
        if python is None:
            return False
        standby(forkservers).prepare(python, "127.0.0.1", 1)
        return True

    # -- readiness ---------------------------------------------------------------------------
    @property
    def management_url(self) -> str:
        return f"http://{self.spec.host}:{self.ports['management']}"

    def _pinged(self) -> bool:
        try:
            return self.session.get(self.base_url + "/ping", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._pinged():
            if self.exited():
                raise self.failed("TorchServe exited during start-up", "ServerExited")
            if time.monotonic() > deadline:
                raise self.failed(f"TorchServe did not answer /ping within {timeout:.0f}s", "StartupTimeout")
            time.sleep(0.1)
        self._register(max(deadline - time.monotonic(), 5.0))

    def _register(self, timeout: float) -> None:
        params: dict[str, str | int] = {"url": MAR_NAME, "initial_workers": self.spec.workers, "synchronous": "true"}
        try:
            response = self.session.post(self.management_url + "/models", params=params, timeout=timeout)
        except requests.Timeout:
            raise self.failed(
                f"TorchServe did not finish registering {MAR_NAME} within {timeout:.0f}s "
                "(workers keep failing to load the model)",
                "ModelLoadTimeout",
            ) from None
        body = json_or_text(response)
        if response.status_code != 200:
            message = body.get("message") if isinstance(body, dict) else None
            raise self.failed(
                f"TorchServe refused {MAR_NAME}: HTTP {response.status_code} {message or body}", "ModelLoadFailed"
            )
        models = json_or_text(self.session.get(self.management_url + "/models", timeout=5)).get("models", [])
        names = [m.get("modelName") for m in models]
        if MODEL_NAME not in names:
            raise self.failed(
                f"{MAR_NAME} registered as {names} but the prebuilt image serves the model named "
                f"'{MODEL_NAME}': every prediction would answer 404 ModelNotFoundException",
                "ModelNameMismatch",
            )


def standby(forkservers: ForkServers) -> WarmTorchServes:
    """The warm idle TorchServes kept with ``forkservers`` (made on first use, closed with them)."""
    from sandbox.runtimes.ts_warm import WarmTorchServes

    return forkservers.room("torchserve", WarmTorchServes)


def installed_python(image: Image) -> Path | None:
    """The interpreter of ``image``'s runtime if it is ready now (never installs anything)."""
    from sandbox.runtimes.torch_envs import env_spec

    try:
        spec = env_spec(image.version)
    except envs.RuntimeUnavailable:
        return None
    return envs.env_python(spec) if envs.installed(spec) else None


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
