"""Sandbox settings: one object, read from ``GDC_SANDBOX_*`` environment variables, passed in explicitly.

Environment variables (all optional; a ``.env`` file in the working folder is read too, the environment wins):

- ``GDC_SANDBOX_BACKEND``: ``native`` (local processes, the default) or ``compose`` (MinIO in Docker Compose
  and one container per model-server replica; README "Docker Compose").
- ``GDC_SANDBOX_HOME``: state, logs, staged models and the S3 data folder (default ``./.sandbox``).
- ``GDC_SANDBOX_HOST``: the address every server binds to (default ``127.0.0.1``).
- ``GDC_SANDBOX_S3_PORT`` / ``GDC_SANDBOX_GATEWAY_PORT``: fixed ports; ``0`` picks a free one.
- ``GDC_SANDBOX_PROJECT``, ``GDC_SANDBOX_LOCATION``, ``GDC_SANDBOX_BUCKET``: the default project layout.
- ``GDC_SANDBOX_STARTUP_TIMEOUT`` / ``GDC_SANDBOX_DEPLOY_TIMEOUT``: seconds.
- ``GDC_SANDBOX_RESTART_BACKOFF``: seconds before a pod that died is restarted (doubling per consecutive death).
- ``GDC_SANDBOX_PROBE_PERIOD`` / ``GDC_SANDBOX_PROBE_TIMEOUT``: seconds between two health probes of each
  model-server pod (default 10; ``0`` turns probes off), and how long a probe waits for an answer (default 1),
  as Kubernetes' ``periodSeconds`` and ``timeoutSeconds``.
- ``GDC_SANDBOX_READINESS_FAILURE_THRESHOLD`` / ``GDC_SANDBOX_LIVENESS_FAILURE_THRESHOLD``: failed probes in a row
  after which a pod is taken out of traffic (it is back at its first answer), and after which it is killed and
  restarted with the back-off (both default 3, Kubernetes' ``failureThreshold``); see control/probes.py.
- ``GDC_SANDBOX_MAX_REQUEST_BYTES``: the online-prediction payload limit (default 1.5 MB).
- ``GDC_SANDBOX_MAX_EXTRACT_BYTES``: the most an archive given to ``repro`` may extract to (default 10 GiB).
- ``GDC_SANDBOX_PREDICTION_AUTH``: ``true`` to require bearer tokens on predict routes.
- ``GDC_SANDBOX_AUTOSCALE_INTERVAL`` / ``GDC_SANDBOX_SCALE_DOWN_DELAY``: seconds between CPU measurements of
  the replicas, and how long usage must stay low before replicas are removed.
- ``GDC_SANDBOX_WARM_IMAGES``: images kept warm from the start: a TF image's framework is imported by a parent
  that forks its model servers, a PyTorch image's TorchServe is started with no model for the next pod to adopt
  (comma-separated; default ``tf2-cpu.2-18,pytorch-cpu.2-4``; ``none``: only after their first deploy).

Plain standard library on purpose: every CLI command reads settings, and the CLI must start fast.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.errors import UsageError

#: The serving identity GDC pods read the bucket as, and the role it needs.
SERVING_IDENTITY = "vai-default-serving-sa"
BUCKET_VIEWER_ROLE = "project-bucket-object-viewer"
PREDICTION_USER_ROLE = "vertex-ai-prediction-user"
ROLES = {
    BUCKET_VIEWER_ROLE: "bucket",
    "project-bucket-object-admin": "bucket",
    PREDICTION_USER_ROLE: "project",
    "vertex-ai-prediction-admin": "project",
}
"""Every role a binding can name, and what it is granted on."""

ENV_PREFIX = "GDC_SANDBOX_"
BACKENDS = ("native", "compose")
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def _read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a dotenv file (``export`` prefixes, quotes and ``#`` comments allowed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip().upper()] = value
    return values


def _convert(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError("expected true or false")
        return Path(raw) if kind is Path else kind(raw.strip())
    except ValueError as exc:
        raise UsageError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}: {exc}",
            code="settings.invalid",
            hint=f"fix or unset {ENV_PREFIX}{name.upper()} (environment or .env)",
        ) from None


@dataclass
class Settings:
    """Everything configurable about one sandbox instance.

    Keyword arguments win over ``GDC_SANDBOX_*`` environment variables, which win over ``.env``, which wins
    over the defaults below.
    """

    backend: str = "native"
    """Where the S3 endpoint and the model servers run: ``native`` local processes, or ``compose`` (Docker)."""

    home: Path = field(default_factory=lambda: Path.cwd() / ".sandbox")
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

    restart_backoff: float = 1.0
    """Seconds before a pod that died is restarted; doubles with each consecutive death (at most 5 minutes)."""

    probe_period: float = 10.0
    """Seconds between two health probes of each pod (Kubernetes' ``periodSeconds``); 0 turns probes off."""

    probe_timeout: float = 1.0
    """Seconds a pod has to answer a health probe (Kubernetes' ``timeoutSeconds``)."""

    readiness_failure_threshold: int = 3
    """Failed probes in a row that take a pod out of traffic until it answers again (``failureThreshold``)."""

    liveness_failure_threshold: int = 3
    """Failed probes in a row after which a pod is killed and restarted with the back-off (``failureThreshold``)."""

    max_request_bytes: int = 1_572_864
    """Online prediction request/response size limit (Vertex: 1.5 MB)."""

    max_extract_bytes: int = 10 * 1024**3
    """Largest total size an archive handed to ``repro`` or a scenario may extract to (GDC's 10 GB artifact limit)."""

    prediction_auth: bool = False
    """Require a bearer token of an identity holding vertex-ai-prediction-user (off, as in GDC's Preview)."""

    autoscale_interval: float = 2.0
    """Seconds between two CPU measurements of a DeployedModel's replicas (Kubernetes' HPA: 15)."""

    scale_down_delay: float = 30.0
    """Seconds usage must stay below the target before replicas are removed (Kubernetes' HPA: 300)."""

    warm_images: str = "tf2-cpu.2-18,pytorch-cpu.2-4"
    """Images whose warm server starts with the sandbox (comma-separated, or ``none``): TF's fork server
    (runtimes/forkserver.py), TorchServe's idle server (runtimes/ts_warm.py)."""

    def __init__(self, **values: Any) -> None:
        fields = {f.name: f for f in dataclasses.fields(Settings)}
        unknown = set(values) - set(fields)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        env = {**_read_env_file(Path(".env")), **{k.upper(): v for k, v in os.environ.items()}}
        for name, spec in fields.items():
            if name in values:
                value = values[name]
                value = Path(value) if spec.type in ("Path", Path) and not isinstance(value, Path) else value
            elif (raw := env.get(f"{ENV_PREFIX}{name.upper()}")) is not None:
                value = _convert(name, _TYPES[str(spec.type)], raw)
            elif spec.default_factory is not dataclasses.MISSING:
                value = spec.default_factory()
            else:
                value = spec.default
            setattr(self, name, value)
        if self.backend not in BACKENDS:
            raise UsageError(
                f"{ENV_PREFIX}BACKEND={self.backend!r} is not a backend: use {' or '.join(BACKENDS)}",
                code="settings.invalid",
                hint=f"fix or unset {ENV_PREFIX}BACKEND (environment or .env)",
            )
        self._check_probes()

    def _check_probes(self) -> None:
        limits = (
            ("probe_period", self.probe_period >= 0, "0 (probes off) or more seconds"),
            ("probe_timeout", self.probe_timeout > 0, "more than 0 seconds"),
            ("readiness_failure_threshold", self.readiness_failure_threshold >= 1, "1 or more"),
            ("liveness_failure_threshold", self.liveness_failure_threshold >= 1, "1 or more"),
        )
        for name, ok, expected in limits:
            if not ok:
                variable = f"{ENV_PREFIX}{name.upper()}"
                raise UsageError(
                    f"{variable}={getattr(self, name):g} is out of range: it must be {expected}",
                    code="settings.invalid",
                    hint=f"fix or unset {variable} (environment or .env)",
                )

    def model_dump(self) -> dict[str, Any]:
        """Every setting by name (the shape :meth:`sandbox.stack.Stack.child_env` passes on to children)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def warm_image_names(self) -> list[str]:
        text = self.warm_images.strip()
        return [] if text.lower() in ("", "none", "off") else [n.strip() for n in text.split(",") if n.strip()]

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


# Field annotations are strings (``from __future__ import annotations``): map them to converters.
_TYPES: dict[str, Any] = {"Path": Path, "str": str, "int": int, "float": float, "bool": bool}
