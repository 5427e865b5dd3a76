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
from pathlib import Path

import requests

from sandbox.images import Image
from sandbox.runtimes import envs
from sandbox.runtimes.base import ModelServerPod, json_or_text

MODEL_NAME = "model"
MAR_NAME = "model.mar"
LAUNCHER = Path(__file__).with_name("ts_launch.py")


def config_properties(host: str, ports: dict[str, int], model_store: Path, workers: int) -> str:
    """The ``config.properties`` of the prebuilt image, bound to loopback ports."""
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
            "vmargs=-Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto",
            "",
        ]
    )


def worker_python_script(python: str, logs: Path) -> str:
    """A bash script that runs a TorchServe worker with ``python``, keeping a copy of its output in ``logs``.

    TorchServe copies a worker's output into its own log from reader threads that it stops as soon as the
    worker dies, so on a loaded machine the worker's last lines, the exception that explains a failed load,
    can be lost. The worker keeps its PID (``exec``) and TorchServe still reads everything. One file per
    stream, so that lines of the two never interleave mid-line.
    """
    out, err = (shlex.quote(str(logs / f"worker-{stream}.log")) for stream in ("stdout", "stderr"))
    return (
        "#!/usr/bin/env bash\n"
        "# TorchServe worker, with a copy of its output kept by gdc-sandbox\n"
        f'exec {shlex.quote(python)} "$@" > >(exec tee -a {out}) 2> >(exec tee -a {err} >&2)\n'
    )


class TorchServePod(ModelServerPod):
    framework = "torch"
    health_path = "/ping"
    predict_path = f"/predictions/{MODEL_NAME}"
    parameters_ignored_by = 'TorchServe\'s json service envelope hands the handler only "instances"'

    @classmethod
    def env_spec(cls, image: Image) -> envs.EnvSpec | None:
        from sandbox.runtimes.torch_envs import env_spec

        return env_spec(image.version)

    @property
    def model_store(self) -> Path:
        return self.spec.pod_dir / "model-store"

    @property
    def worker_python(self) -> Path:
        return self.spec.pod_dir / "worker-python"

    @property
    def worker_logs(self) -> Path:
        return self.spec.pod_dir / "logs"

    def extra_logs(self) -> list[Path]:
        return [self.worker_logs / "worker-stdout.log", self.worker_logs / "worker-stderr.log"]

    def stage(self) -> None:
        self.allocate_ports("http", "management", "metrics", "grpc", "grpc_management")
        self.worker_logs.mkdir(parents=True, exist_ok=True)
        self.worker_python.write_text(worker_python_script(str(self.python()), self.worker_logs))
        self.worker_python.chmod(0o755)
        shutil.copytree(self.spec.artifact_dir, self.model_store)
        (self.spec.pod_dir / "config.properties").write_text(
            config_properties(self.spec.host, self.ports, self.model_store, self.spec.workers)
        )

    def argv(self) -> list[str]:
        return [
            str(self.python()),
            str(LAUNCHER),
            str(self.worker_python),
            "--foreground",
            "--ts-config",
            str(self.spec.pod_dir / "config.properties"),
            "--model-store",
            str(self.model_store),
            "--disable-token-auth",
            "--enable-model-api",
            "--ncs",
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["LOG_LOCATION"] = str(self.spec.pod_dir / "logs")
        env["METRICS_LOCATION"] = str(self.spec.pod_dir / "logs")
        return env

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
