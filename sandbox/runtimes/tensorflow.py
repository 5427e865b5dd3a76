"""The TensorFlow prebuilt image: a TF Serving-compatible server on the image's own TensorFlow version.

The image copies the SavedModel into a numeric version folder (``<base>/1/``) and runs the model
server with ``--model_name=default``. Here the server is :mod:`sandbox.runtimes.tfserving`, started
with the real binary's flags under the Python environment of the image's TensorFlow version. When that
environment's fork server is running (:mod:`sandbox.runtimes.forkserver`), the pod's server is forked
from it, TensorFlow already imported, instead of starting cold.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from sandbox.images import Image
from sandbox.runtimes import envs
from sandbox.runtimes.base import ModelServerPod, PodInfo, json_or_text

if TYPE_CHECKING:
    from sandbox.process import ManagedProcess
    from sandbox.runtimes.forkserver import ForkServers

MODEL_NAME = "default"
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULE = "sandbox.runtimes.tfserving"
FORKSERVER_MODULE = "sandbox.runtimes.tfserving.forkserver"


class TFServingPod(ModelServerPod):
    framework = "tf"
    health_path = f"/v1/models/{MODEL_NAME}"
    predict_path = f"/v1/models/{MODEL_NAME}:predict"
    parameters_ignored_by = 'TF Serving\'s REST API reads only "signature_name" and "instances" (or "inputs")'

    @property
    def base_path(self) -> Path:
        return self.spec.pod_dir / "model"

    def stage(self) -> None:
        self.allocate_ports("http", "grpc")
        shutil.copytree(self.spec.artifact_dir, self.base_path / "1")

    @classmethod
    def env_spec(cls, image: Image) -> envs.EnvSpec | None:
        from sandbox.runtimes.tf_envs import env_spec

        return env_spec(image.version)

    def argv(self) -> list[str]:
        return [str(self.python()), "-m", SERVER_MODULE, *self.flags()]

    def flags(self) -> list[str]:
        """The model server's flags, those of the real ``tensorflow_model_server`` in the image."""
        return [
            f"--port={self.ports['grpc']}",
            f"--rest_api_port={self.ports['http']}",
            f"--rest_api_host={self.spec.host}",
            f"--model_name={MODEL_NAME}",
            f"--model_base_path={self.base_path}",
            *self.spec.extra.get("server_args", []),
        ]

    def env(self) -> dict[str, str]:
        return server_env(super().env())

    def spawn(self) -> ManagedProcess:
        forkservers = self.spec.forkservers
        if forkservers is not None:
            forked = forkservers.spawn(
                str(self.python()),
                name=self.spec.name,
                flags=self.flags(),
                log_path=self.spec.log_path,
                env=self.env(),
                cwd=self.spec.pod_dir,
                record_path=self.spec.spawn_record,
                scratch_dir=self.tmp_dir,
            )
            if forked is not None:
                return forked
        return super().spawn()

    def start(self, timeout: float) -> PodInfo:
        try:
            return super().start(timeout)
        finally:
            if self.spec.forkservers is not None and self._python is not None:  # keep one for the next deploy
                self.spec.forkservers.prepare(str(self._python), FORKSERVER_MODULE, self.env())

    @classmethod
    def warm_up(cls, forkservers: ForkServers, image: Image) -> bool:
        python = installed_python(image.version)
        if python is None:
            return False  # not installed yet: the first deploy installs it, with progress, then keeps one warm
        forkservers.prepare(str(python), FORKSERVER_MODULE, server_env({**os.environ, "PYTHONUNBUFFERED": "1"}))
        return True

    def _status(self) -> tuple[int, Any] | None:
        try:
            response = self.session.get(self.base_url + self.health_path, timeout=2)
        except requests.RequestException:
            return None
        return response.status_code, json_or_text(response)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: tuple[int, Any] | None = None
        while time.monotonic() < deadline:
            if self.exited():
                raise self.failed("the TensorFlow model server exited while loading the model", "ServerExited")
            last = self._status()
            if last is not None and last[0] == 200:
                versions = last[1].get("model_version_status", [])
                if any(v.get("state") == "AVAILABLE" for v in versions):
                    return
                errors = [v.get("status", {}) for v in versions if v.get("state") == "END"]
                errors = [e for e in errors if e.get("error_code", "OK") != "OK"]
                if errors:
                    raise self.failed(errors[0].get("error_message") or str(errors[0]), "ModelLoadFailed")
            time.sleep(0.05)
        detail = f" (last answer: HTTP {last[0]} {last[1]})" if last else ""
        raise self.failed(f"the model never became ready within {timeout:.0f}s{detail}", "ModelNeverReady")


def server_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus what the TF model server needs: this repository importable, TensorFlow's C++ log level."""
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return env


def installed_python(tf_version: str) -> Path | None:
    """The interpreter of ``tf_version``'s runtime if it is ready now (never installs anything)."""
    from sandbox.runtimes.tf_envs import env_spec

    try:
        spec = env_spec(tf_version)
    except envs.RuntimeUnavailable:
        return None
    if spec is None:
        return Path(sys.executable)
    return envs.env_python(spec) if envs.installed(spec) else None
