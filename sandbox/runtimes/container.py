"""The Docker Compose backend's pods: one container per DeployedModel replica, started with the docker SDK.

Each replica is its own container of the image that runs the GDC image (:mod:`container_images`),
on host networking with its own loopback ports, reading the staged artifact from a read-only bind
mount, exactly as the native pods read it from their folder. A container's failure is its own: a
bad version never touches another DeployedModel's container, and a rollout starts the new
containers before the old ones are stopped (the deployer's rule, unchanged).

The container is run by :mod:`sandbox.runtimes.container_run`, a process that stands for it, so the
records, crash detection and clean-up of native pods apply as they are; the pod log is the
container's own output. Readiness and model registration are the frameworks' own checks
(:class:`TFServingPod`, :class:`TorchServePod`), over the same HTTP APIs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.errors import DeployFailed
from sandbox.images import Image
from sandbox.process import ManagedProcess
from sandbox.runtimes import envs
from sandbox.runtimes.base import TERMINATION_GRACE, ModelServerPod, PodInfo
from sandbox.runtimes.container_images import container_image, override_variable
from sandbox.runtimes.tensorflow import MODEL_NAME as TF_MODEL_NAME
from sandbox.runtimes.tensorflow import TFServingPod
from sandbox.runtimes.torchserve import MAR_NAME, TorchServePod, config_properties, worker_python_script

if TYPE_CHECKING:
    from sandbox.runtimes.forkserver import ForkServers

ENGINE_STOP_SECONDS = 10
"""Seconds, beyond the container's own grace, that the process standing for it may take to have the engine stop
and remove it (API calls on a busy engine) before it is killed, which would leave the container behind."""

LABEL = "gdc-sandbox"
"""Label on every container the sandbox starts; its value is the sandbox home the container belongs to."""


PULL_VARIABLE = "GDC_SANDBOX_IMAGE_PULL"


def pulls_allowed() -> bool:
    """A missing image is pulled, as Kubernetes does, unless ``GDC_SANDBOX_IMAGE_PULL=never``."""
    return os.environ.get(PULL_VARIABLE, "").lower() != "never"


def home_label(home: Path) -> str:
    return str(Path(home).resolve())


def container_name(pod_name: str) -> str:
    """A Docker container name (at most 63 characters) for a pod."""
    name = f"gdcs-{pod_name}"
    if len(name) <= 63:
        return name
    return f"{name[:54]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


class ContainerPod(ModelServerPod):
    """Runs the model server of a framework subclass in a container instead of a local process.

    Subclasses say what goes where: :meth:`mounts` (host path -> container path) and
    :meth:`container_command` (the entrypoint and arguments of the image's model server).

    Stopping the pod stops its container with the grace of every pod (:data:`TERMINATION_GRACE`, its stop
    timeout: SIGTERM, then SIGKILL); the process standing for it gets that and :data:`ENGINE_STOP_SECONDS` more.
    """

    process_grace = TERMINATION_GRACE + ENGINE_STOP_SECONDS

    def mounts(self) -> dict[Path, str]:
        """Host folder -> path in the container, mounted read-only."""
        raise NotImplementedError

    def writable_mounts(self) -> dict[Path, str]:
        """Host folder -> path in the container, for what the model server writes that the sandbox reads."""
        return {}

    def container_command(self) -> list[str]:
        raise NotImplementedError

    def container_env(self) -> dict[str, str]:
        return {}

    @classmethod
    def refusal(cls, image: Image) -> DeployFailed | None:
        return None  # every GDC image has a container image, also those with no native runtime

    @classmethod
    def env_spec(cls, image: Image) -> envs.EnvSpec | None:
        return None  # the container image carries its own framework: no local runtime to create

    @property
    def image_ref(self) -> str:
        return container_image(self.spec.image.name)

    def stage(self) -> None:
        super().stage()
        self._ensure_image()

    def _ensure_image(self) -> None:
        import docker
        from docker.errors import DockerException, ImageNotFound

        try:
            client = docker.from_env()
            try:
                client.images.get(self.image_ref)
                return
            except ImageNotFound:
                if not pulls_allowed():
                    raise DockerException(f"pulling is off ({PULL_VARIABLE}=never)") from None
                client.images.pull(self.image_ref)
        except DockerException as exc:
            raise DeployFailed(
                f"image {self.image_ref} (serving {self.spec.image.name}) is not on the Docker engine and "
                f"could not be pulled: {exc}",
                code="deploy.ErrImagePull",
                hint=f"`docker pull {self.image_ref}` where a registry is reachable, or set "
                f"{override_variable(self.spec.image.name)} to an image the engine has (README: Docker Compose)",
            ) from None

    def container_spec(self) -> dict[str, Any]:
        """Keyword arguments of docker's ``containers.create`` for this pod, and ``stop_timeout`` for
        :mod:`container_run`: the seconds between the SIGTERM and the SIGKILL of ``docker stop``."""
        command = self.container_command()
        return {
            "image": self.image_ref,
            "entrypoint": command[:1],
            "command": command[1:],
            "name": container_name(self.spec.name),
            "network_mode": "host",
            "init": True,
            "stop_timeout": TERMINATION_GRACE,
            "environment": self.container_env(),
            "volumes": {
                str(host.resolve()): {"bind": inside, "mode": mode}
                for mounts, mode in ((self.mounts(), "ro"), (self.writable_mounts(), "rw"))
                for host, inside in mounts.items()
            },
            "labels": {
                LABEL: home_label(Path(os.environ.get("GDC_SANDBOX_HOME", ".sandbox"))),
                f"{LABEL}.pod": self.spec.name,
                f"{LABEL}.image": self.spec.image.name,
            },
        }

    def spawn(self) -> ManagedProcess:
        """The process standing for the container, started cold: fork servers are the native pods' warm start."""
        return ModelServerPod.spawn(self)

    @classmethod
    def warm_up(cls, forkservers: ForkServers, image: Image) -> bool:
        return False

    def info(self) -> PodInfo:
        return replace(super().info(), container_pid=self._container_pid())

    def _container_pid(self) -> int | None:
        """The container's init process, as this machine sees it; None when the engine runs its containers
        elsewhere (a VM: its PIDs are not ours) or cannot say."""
        import docker
        from docker.errors import DockerException

        try:
            container = docker.from_env().containers.get(container_name(self.spec.name))
            pid = int(container.attrs["State"]["Pid"])
            mine = container.id in Path(f"/proc/{pid}/cgroup").read_text()  # that PID here is in that container
        except (DockerException, KeyError, TypeError, ValueError, OSError):
            return None
        return pid if pid > 0 and mine else None

    def argv(self) -> list[str]:
        spec_path = self.spec.pod_dir / "container.json"
        spec_path.write_text(json.dumps(self.container_spec(), indent=1))
        return [sys.executable, "-m", "sandbox.runtimes.container_run", str(spec_path)]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}



class TFServingContainer(ContainerPod, TFServingPod):
    """``tensorflow/serving``: the model in ``/model/1`` (the native pods' layout, so messages name the same
    path), the real binary's flags."""

    BASE_PATH = "/model"

    def mounts(self) -> dict[Path, str]:
        return {self.base_path: self.BASE_PATH}

    def container_command(self) -> list[str]:
        return [
            "tensorflow_model_server",
            f"--port={self.ports['grpc']}",
            f"--rest_api_port={self.ports['http']}",
            f"--model_name={TF_MODEL_NAME}",
            f"--model_base_path={self.BASE_PATH}",
            *self.spec.extra.get("server_args", []),  # the DeployedModel's modelContainerSpec args
        ]


class TorchServeContainer(ContainerPod, TorchServePod):
    """``pytorch/torchserve``: ``model.mar`` in the model store, TorchServe's own launcher with the image's config.

    As on the native pods, each worker runs under a small script that keeps a copy of its output
    (:func:`worker_python_script`): TorchServe drops the last lines of a worker that dies, which are the
    lines that say why. The launcher is started with the image's ``python3`` and told to use that script
    as the workers' Python, as :mod:`sandbox.runtimes.ts_launch` does natively.
    """

    HOME = "/home/model-server"
    WORKER = f"{HOME}/worker"
    LAUNCH = (
        "import sys; from ts.model_server import start; sys.executable = sys.argv[1]; "
        "sys.argv = ['torchserve', *sys.argv[2:]]; start()"
    )

    @property
    def worker_dir(self) -> Path:
        return self.spec.pod_dir / "worker"

    def _standby(self) -> None:
        return None  # idle TorchServes are native processes: a container starts cold

    def stage(self) -> None:
        self.allocate_ports("http", "management", "metrics", "grpc", "grpc_management")
        shutil.copytree(self.spec.artifact_dir, self.model_store)
        config = config_properties(self.spec.host, self.ports, Path(f"{self.HOME}/model-store"), self.spec.workers)
        (self.spec.pod_dir / "config").mkdir()
        (self.spec.pod_dir / "config" / "config.properties").write_text(config)
        self.worker_dir.mkdir()
        script = self.worker_dir / "worker-python"
        script.write_text(worker_python_script("python3", Path(f"{self.WORKER}/logs")))
        script.chmod(0o755)
        self.worker_logs.mkdir()
        self.worker_logs.chmod(0o777)  # the image's user (model-server in the public image) writes there
        self._ensure_image()

    def mounts(self) -> dict[Path, str]:
        return {
            self.model_store: f"{self.HOME}/model-store",
            self.spec.pod_dir / "config": f"{self.HOME}/config",
            self.worker_dir: self.WORKER,
        }

    def writable_mounts(self) -> dict[Path, str]:
        return {self.worker_logs: f"{self.WORKER}/logs"}

    @property
    def worker_logs(self) -> Path:
        return self.worker_dir / "logs"

    def container_command(self) -> list[str]:
        return [
            "python3",
            "-c",
            self.LAUNCH,
            f"{self.WORKER}/worker-python",
            "--foreground",
            "--ts-config",
            f"{self.HOME}/config/config.properties",
            "--model-store",
            f"{self.HOME}/model-store",
            "--disable-token-auth",
            "--enable-model-api",
            "--ncs",
        ]

    def container_env(self) -> dict[str, str]:
        return {"LOG_LOCATION": "/tmp/logs", "METRICS_LOCATION": "/tmp/logs"}


__all__ = ["MAR_NAME", "ContainerPod", "TFServingContainer", "TorchServeContainer", "container_name"]
