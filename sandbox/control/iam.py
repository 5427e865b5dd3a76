"""Projects, identities and role bindings: who may read which bucket and call which endpoint."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.errors import NotFound, UsageError
from sandbox.settings import BUCKET_VIEWER_ROLE, PREDICTION_USER_ROLE, ROLES, SERVING_IDENTITY

READ_ROLES = (BUCKET_VIEWER_ROLE, "project-bucket-object-admin")
PREDICT_ROLES = (PREDICTION_USER_ROLE, "vertex-ai-prediction-admin")


@dataclass(frozen=True)
class Binding:
    project: str
    identity: str
    role: str
    resource: str
    """The bucket name for bucket roles, the project for project roles."""


class IAM:
    """Role bindings and identity tokens, persisted as one JSON file."""

    def __init__(self, path: Path, bucket_exists: Callable[[str], bool] = lambda bucket: True) -> None:
        self.path = path
        self.bucket_exists = bucket_exists
        self._lock = threading.Lock()
        self.bindings: set[Binding] = set()
        self.tokens: dict[str, tuple[str, str]] = {}  # token -> (project, identity)
        if path.exists():
            data = json.loads(path.read_text())
            self.bindings = {Binding(**b) for b in data.get("bindings", [])}
            self.tokens = {t: (p, i) for t, (p, i) in data.get("tokens", {}).items()}

    def _save(self) -> None:
        data = {
            "bindings": [asdict(b) for b in sorted(self.bindings, key=lambda b: tuple(asdict(b).values()))],
            "tokens": {t: list(v) for t, v in self.tokens.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.path)

    def grant(self, project: str, identity: str, role: str, resource: str | None = None) -> Binding:
        binding = self._binding(project, identity, role, resource)
        if ROLES[role] == "bucket" and not self.bucket_exists(binding.resource):
            raise NotFound(
                f"bucket {binding.resource} does not exist, so {role} cannot be granted on it",
                code="iam.no-such-bucket",
                hint=f"create it with `gdc-sandbox mb s3://{binding.resource}`, or check the name: "
                "`gdc-sandbox ls s3://` lists the buckets",
            )
        with self._lock:
            self.bindings.add(binding)
            self._save()
        return binding

    def revoke(self, project: str, identity: str, role: str, resource: str | None = None) -> Binding:
        binding = self._binding(project, identity, role, resource)
        with self._lock:
            if binding not in self.bindings:
                raise NotFound(
                    f"{identity} does not hold {role} on {binding.resource} in project {project}",
                    code="iam.no-such-binding",
                    hint="`gdc-sandbox iam list` shows the bindings",
                )
            self.bindings.discard(binding)
            self._save()
        return binding

    def list(
        self,
        project: str | None = None,
        identity: str | None = None,
        role: str | None = None,
        resource: str | None = None,
    ) -> list[Binding]:
        """Bindings matching every filter given (None matches all)."""
        if role is not None:
            _known_role(role)
        wanted = {"project": project, "identity": identity, "role": role, "resource": resource}
        with self._lock:
            return sorted(
                (b for b in self.bindings if all(v in (None, getattr(b, k)) for k, v in wanted.items())),
                key=lambda b: tuple(asdict(b).values()),
            )

    def can_read_bucket(self, project: str, identity: str, bucket: str) -> bool:
        with self._lock:
            return any(Binding(project, identity, role, bucket) in self.bindings for role in READ_ROLES)

    def can_predict(self, project: str, identity: str) -> bool:
        with self._lock:
            return any(Binding(project, identity, role, project) in self.bindings for role in PREDICT_ROLES)

    def issue_token(self, project: str, identity: str) -> str:
        token = "gdcs_" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (project, identity)
            self._save()
        return token

    def identity_for(self, token: str) -> tuple[str, str] | None:
        with self._lock:
            return self.tokens.get(token)

    @staticmethod
    def _binding(project: str, identity: str, role: str, resource: str | None) -> Binding:
        _known_role(role)
        if ROLES[role] == "bucket":
            if not resource:
                raise UsageError(
                    f"{role} is granted on a bucket", code="iam.bucket-required", hint="pass --bucket NAME"
                )
            return Binding(project, identity, role, resource)
        return Binding(project, identity, role, project)


def _known_role(role: str) -> None:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", code="iam.unknown-role", hint="roles: " + ", ".join(ROLES))


def default_bindings(iam: IAM, project: str, bucket: str) -> None:
    """What a new GDC project has: the serving identity may read the model bucket."""
    iam.grant(project, SERVING_IDENTITY, BUCKET_VIEWER_ROLE, bucket)
