"""The Docker Compose backend's S3 endpoint and container inventory.

``gdc-sandbox up`` with ``GDC_SANDBOX_BACKEND=compose`` runs ``docker-compose up minio`` in the
foreground as the sandbox's S3 process (its log is the service's output), so the S3 endpoint is
started, watched and stopped like the native one; ``down`` then removes the Compose project's
containers. Bucket data lives in ``$GDC_SANDBOX_HOME/minio``, a bind mount, so it survives ``down``.
Every container of a home (MinIO and the model servers) carries the label ``gdc-sandbox=<home>``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError
from sandbox.process import claim_port
from sandbox.runtimes.container import LABEL, home_label
from sandbox.runtimes.container_images import MINIO, container_image, override_variable
from sandbox.settings import Settings

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
S3_SERVICE = "minio"
HEALTH_PATH = "/minio/health/live"


class DockerUnavailable(SandboxError):
    code = "compose.docker-unavailable"


def compose_command() -> list[str]:
    """``$GDC_SANDBOX_COMPOSE`` (e.g. ``docker compose``), else ``docker-compose`` if installed, else the plugin."""
    explicit = os.environ.get("GDC_SANDBOX_COMPOSE")
    if explicit:
        return shlex.split(explicit)
    return ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]


def docker_client() -> Any:
    """A client of the engine at ``DOCKER_HOST`` (or the default socket); :class:`DockerUnavailable` if none answers."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
        return client
    except DockerException as exc:
        raise DockerUnavailable(
            f"no Docker engine answers at {os.environ.get('DOCKER_HOST') or 'the default socket'}: {exc}",
            hint="start Docker, or set DOCKER_HOST to its socket (unix:///path/docker.sock); "
            "the native backend needs no Docker (unset GDC_SANDBOX_BACKEND)",
        ) from None


@dataclass
class ContainerRow:
    """One container of a sandbox home, as `gdc-sandbox status` shows it."""

    id: str
    name: str
    image: str
    state: str


class ComposeBackend:
    """The compose backend's part of the stack (:class:`sandbox.stack.StackBackend`): the Compose project of one
    sandbox home, named after the home folder."""

    s3_health_path = HEALTH_PATH

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = home_label(settings.home)
        self.name = "gdc-sandbox-" + hashlib.sha1(self.home.encode()).hexdigest()[:10]

    @property
    def data_dir(self) -> Path:
        return Path(self.home) / "minio"

    def command(self, *args: str) -> list[str]:
        return [*compose_command(), "--project-name", self.name, "--file", str(COMPOSE_FILE), *args]

    def env(self, s3_port: int, console_port: int) -> dict[str, str]:
        """The variables docker-compose.yml reads."""
        return {
            "GDC_SANDBOX_S3_ADDRESS": f"{self.settings.host}:{s3_port}",
            "GDC_SANDBOX_S3_CONSOLE_ADDRESS": f"{self.settings.host}:{console_port}",
            "GDC_SANDBOX_MINIO_DATA": str(self.data_dir),
            "GDC_SANDBOX_HOME_LABEL": self.home,
            override_variable(MINIO): container_image(MINIO),
            "GDC_SANDBOX_ACCESS_KEY": self.settings.access_key,
            "GDC_SANDBOX_SECRET_KEY": self.settings.secret_key,
        }

    def s3_launch(self, port: int) -> tuple[list[str], dict[str, str]]:
        """Run MinIO in the foreground; the process ends when the container does."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        docker_client()
        console = claim_port(0, self.settings.host, "MinIO console", "")
        return self.command("up", "--no-color", "--abort-on-container-exit", S3_SERVICE), self.env(port, console)

    def remove_leftovers(self) -> None:
        """``docker-compose down`` (containers only; the bucket data folder stays), then any model-server
        container of this home that outlived its process."""
        env = {**os.environ, **self.env(0, 0)}
        try:
            client = docker_client()
            subprocess.run(self.command("down", "--remove-orphans"), env=env, capture_output=True, timeout=120)
        except (DockerUnavailable, OSError, subprocess.TimeoutExpired):
            return
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={self.home}"}):
            container.remove(force=True)

    def containers(self) -> list[ContainerRow] | None:
        client = docker_client()
        rows = []
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={self.home}"}):
            tags = container.image.tags if container.image else []
            rows.append(ContainerRow(container.short_id, container.name, tags[0] if tags else "?", container.status))
        return sorted(rows, key=lambda row: row.name)
