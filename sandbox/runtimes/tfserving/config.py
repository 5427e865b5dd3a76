"""Model configuration: one model from flags, or a ``ModelServerConfig`` text proto file."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from . import errors


@dataclass(frozen=True)
class VersionPolicy:
    """``model_version_policy``: ``kind`` is ``latest`` (keep ``num_versions``), ``all`` or ``specific``."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> set[int]:
        """The versions to serve out of the ones found on disk."""
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return set(self.versions) & set(available)
        return set(sorted(available)[-max(self.num_versions, 1):])


@dataclass(frozen=True)
class ModelConfig:
    """One entry of ``model_config_list``."""

    name: str
    base_path: str
    platform: str = "tensorflow"
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = field(default_factory=dict, hash=False, compare=True)


def from_flags(name: str, base_path: str) -> list[ModelConfig]:
    return [ModelConfig(name=name, base_path=base_path)]


def parse_config_text(text: str) -> list[ModelConfig]:
    """Parse a ``ModelServerConfig`` in text format; raises ServingError(INVALID_ARGUMENT)."""
    msg = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise errors.invalid_argument(f"Invalid protobuf file: {exc}") from exc
    if msg.WhichOneof("config") == "custom_model_config":
        raise errors.unimplemented("custom_model_config is not supported")
    out: list[ModelConfig] = []
    seen: set[str] = set()
    for c in msg.model_config_list.config:
        if c.name in seen:
            raise errors.invalid_argument(f"Illegal to list model {c.name} multiple times in config list")
        seen.add(c.name)
        platform = c.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise errors.failed_precondition(f"Model {c.name} requested unsupported platform {platform}")
        choice = c.model_version_policy.WhichOneof("policy_choice")
        if choice == "all":
            policy = VersionPolicy("all")
        elif choice == "specific":
            policy = VersionPolicy("specific", versions=tuple(c.model_version_policy.specific.versions))
        else:
            policy = VersionPolicy("latest", num_versions=c.model_version_policy.latest.num_versions or 1)
        out.append(ModelConfig(c.name, c.base_path, platform, policy, dict(c.version_labels)))
    return out
