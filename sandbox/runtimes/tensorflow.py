"""The TensorFlow prebuilt image: a TF Serving-compatible server on the image's own TensorFlow version.

The image copies the SavedModel into a numeric version folder (``<base>/1/``) and runs the model
server with ``--model_name=default``. Here the server is :mod:`sandbox.runtimes.tfserving`, started
with the real binary's flags under the Python environment of the image's TensorFlow version.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import requests

from sandbox.images import Image
from sandbox.runtimes import envs
from sandbox.runtimes.base import ModelServerPod, json_or_text

MODEL_NAME = "default"
REPO_ROOT = Path(__file__).resolve().parents[2]


class TFServingPod(ModelServerPod):
    framework = "tf"
    health_path = f"/v1/models/{MODEL_NAME}"
    predict_path = f"/v1/models/{MODEL_NAME}:predict"

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
        return [
            str(self.python),
            "-m",
            "sandbox.runtimes.tfserving",
            f"--port={self.ports['grpc']}",
            f"--rest_api_port={self.ports['http']}",
            f"--rest_api_host={self.spec.host}",
            f"--model_name={MODEL_NAME}",
            f"--model_base_path={self.base_path}",
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        return env

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
            time.sleep(0.1)
        detail = f" (last answer: HTTP {last[0]} {last[1]})" if last else ""
        raise self.failed(f"the model never became ready within {timeout:.0f}s{detail}", "ModelNeverReady")
