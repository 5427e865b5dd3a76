"""Sandbox settings: one object, read from ``GDC_SANDBOX_*`` environment variables, passed in explicitly.

Environment variables (all optional):

- ``GDC_SANDBOX_BACKEND``: ``native`` (local processes, the default) or ``compose`` (MinIO in Docker Compose
  and one container per model-server replica; README "Docker Compose").
- ``GDC_SANDBOX_HOME``: state, logs, staged models and the S3 data folder (default ``./.sandbox``).
- ``GDC_SANDBOX_HOST``: the address every server binds to (default ``127.0.0.1``).
- ``GDC_SANDBOX_S3_PORT`` / ``GDC_SANDBOX_GATEWAY_PORT``: fixed ports; ``0`` picks a free one.
- ``GDC_SANDBOX_PROJECT``, ``GDC_SANDBOX_LOCATION``, ``GDC_SANDBOX_BUCKET``: the default project layout.
- ``GDC_SANDBOX_STARTUP_TIMEOUT`` / ``GDC_SANDBOX_DEPLOY_TIMEOUT``: seconds.
- ``GDC_SANDBOX_MAX_REQUEST_BYTES``: the online-prediction payload limit (default 1.5 MB).
- ``GDC_SANDBOX_PREDICTION_AUTH``: ``true`` to require bearer tokens on predict routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The serving identity GDC pods read the bucket as, and the role it needs.
SERVING_IDENTITY = "vai-default-serving-sa"
BUCKET_VIEWER_ROLE = "project-bucket-object-viewer"
PREDICTION_USER_ROLE = "vertex-ai-prediction-user"


class Settings(BaseSettings):
    """Everything configurable about one sandbox instance."""

    model_config = SettingsConfigDict(env_prefix="GDC_SANDBOX_", env_file=".env", extra="ignore")

    backend: Literal["native", "compose"] = "native"
    """Where the S3 endpoint and the model servers run: local processes, or Docker containers."""

    home: Path = Field(default_factory=lambda: Path.cwd() / ".sandbox")
    """Folder holding state, logs, staged artifacts and persisted bucket data."""

    host: str = "127.0.0.1"
    """Address every sandbox server binds to. Keep it on loopback."""

    s3_port: int = 9000
    """Port of the S3 endpoint; 0 picks a free port at start."""

    gateway_port: int = 8080
    """Port of the control plane and prediction gateway; 0 picks a free port at start."""

    project: str = "default"
    """The GDC project (Kubernetes namespace) created at start."""

    location: str = "local"
    """Location used in Vertex-style resource paths."""

    bucket: str = "models"
    """Bucket created at start, readable by the serving identity."""

    access_key: str = "gdc-sandbox"
    """S3 access key id of the default project."""

    secret_key: str = "gdc-sandbox-secret"
    """S3 secret key of the default project."""

    startup_timeout: float = 60.0
    """Seconds a sandbox component may take to answer its health check."""

    deploy_timeout: float = 120.0
    """Seconds a model server may take to load a model and become ready."""

    max_request_bytes: int = 1_572_864
    """Online prediction request/response size limit (Vertex: 1.5 MB)."""

    prediction_auth: bool = False
    """Require a bearer token of an identity holding vertex-ai-prediction-user (off, as in GDC's Preview)."""

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        """Working folders of running processes (staged models, temp files)."""
        return self.home / "run"

    @property
    def s3_data_dir(self) -> Path:
        return self.home / "s3"

    def ensure_dirs(self) -> None:
        for folder in (self.home, self.state_dir, self.log_dir, self.run_dir, self.s3_data_dir):
            folder.mkdir(parents=True, exist_ok=True)


def load_settings() -> Settings:
    """:class:`Settings` from the environment; a bad ``GDC_SANDBOX_*`` value is a :class:`UsageError` naming it."""
    from sandbox.errors import UsageError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"GDC_SANDBOX_{'_'.join(str(part) for part in error['loc']).upper()}={error['input']!r}: {error['msg']}"
            for error in exc.errors()
        )
        raise UsageError(
            f"invalid setting: {problems}", code="settings.invalid", hint="fix or unset the variable"
        ) from None
