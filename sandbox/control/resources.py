"""The GDC prediction resources (API group ``prediction.aiplatform.gdc.goog/v1``) and their validation.

Field names follow GDC's documentation; the ones it leaves implicit (``modelSpec.artifactLocation``,
``modelSpec.id``, ``modelSpec.modelVersionID``, ``modelSpec.modelContainerSpec.imageURI``,
``destinations[].serviceRef`` / ``trafficPercentage``) are our best reading. Unknown fields are
rejected with their path and the allowed names, and nothing is changed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sandbox.errors import UsageError
from sandbox.images import resolve
from sandbox.uri import ArtifactURI

API_GROUP = "prediction.aiplatform.gdc.goog"
API_VERSIONS = (f"{API_GROUP}/v1", "aiplatform.gdc.goog/v1")
KINDS = ("ResourcePool", "DeployedModel", "Endpoint")
KIND_ALIASES = {
    "resourcepool": "ResourcePool",
    "resourcepools": "ResourcePool",
    "rp": "ResourcePool",
    "deployedmodel": "DeployedModel",
    "deployedmodels": "DeployedModel",
    "dm": "DeployedModel",
    "endpoint": "Endpoint",
    "endpoints": "Endpoint",
    "ep": "Endpoint",
}
MACHINE_TYPES = {
    "n2-standard-2-gdc": 2,
    "n2-standard-4-gdc": 4,
    "n2-standard-8-gdc": 8,
    "n2-highmem-2-gdc": 2,
    "n2-highmem-4-gdc": 4,
    "n2-highmem-8-gdc": 8,
    "a2-highgpu-1g-gdc": 12,
    "a2-ultragpu-1g-gdc": 12,
}
ACCELERATORS = ("nvidia-a100-80gb", "nvidia-a100-40gb", "nvidia-h100-80gb", "")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENDPOINT_PATH = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/endpoints/(?P<endpoint>[^/]+)$"
)
FORCE_ANNOTATION = "sandbox.gdc.goog/skip-preflight"
ATTACH_ANNOTATION = "sandbox.gdc.goog/attach-to-endpoint"
"""Set by `gdc-sandbox deploy`: once Ready, the DeployedModel takes the endpoint's traffic and replaces
the DeployedModel the shorthand deployed there before."""
TRAFFIC_ANNOTATION = "sandbox.gdc.goog/traffic-percentage"
"""Set by `gdc-sandbox deploy --traffic N`: once Ready, the DeployedModel takes N % of the endpoint's traffic."""
DIGEST_ANNOTATION = "sandbox.gdc.goog/artifact-digest"
"""Set by `gdc-sandbox deploy`: the bucket's ETags of the artifact, so that deploying again after
`upload --overwrite` rolls the new bytes out (the pods serve a staged copy, not the bucket)."""


def _as_value_error(parse: Any, value: str) -> Any:
    """Run a parser that raises SandboxError so pydantic reports its message under the field's path."""
    try:
        return parse(value)
    except UsageError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ObjectRef(_Strict):
    kind: str
    name: str
    namespace: str | None = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be a DNS label: lowercase letters, digits and '-', at most 63 characters")
        return value


class MachineSpec(_Strict):
    machineType: str = "n2-standard-2-gdc"
    acceleratorType: str = ""
    acceleratorCount: int = Field(default=0, ge=0, le=8)

    @field_validator("machineType")
    @classmethod
    def _known_machine(cls, value: str) -> str:
        if value not in MACHINE_TYPES:
            raise ValueError(f"unknown machine type {value!r}; allowed: {', '.join(MACHINE_TYPES)}")
        return value

    @field_validator("acceleratorType")
    @classmethod
    def _known_accelerator(cls, value: str) -> str:
        if value not in ACCELERATORS:
            raise ValueError(f"unknown accelerator {value!r}; allowed: {', '.join(a for a in ACCELERATORS if a)}")
        return value


class Autoscaling(_Strict):
    minReplica: int = Field(default=1, ge=1, le=8)
    maxReplica: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.maxReplica < self.minReplica:
            raise ValueError(f"maxReplica ({self.maxReplica}) must be >= minReplica ({self.minReplica})")
        return self


class DedicatedResources(_Strict):
    machineSpec: MachineSpec = Field(default_factory=MachineSpec)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)


class ResourcePoolSpec(_Strict):
    resourcePoolID: str
    enableContainerLogging: bool = False
    dedicatedResources: DedicatedResources = Field(default_factory=DedicatedResources)


class ModelContainerSpec(_Strict):
    imageURI: str
    ports: list[int] = Field(default_factory=lambda: [8080])

    @field_validator("imageURI")
    @classmethod
    def _known_image(cls, value: str) -> str:
        _as_value_error(resolve, value)
        return value


class ModelSpec(_Strict):
    artifactLocation: str
    id: str
    modelVersionID: str
    modelDisplayName: str | None = None
    modelContainerSpec: ModelContainerSpec

    @field_validator("artifactLocation")
    @classmethod
    def _s3_layout(cls, value: str) -> str:
        _as_value_error(ArtifactURI.parse, value)
        return value

    @model_validator(mode="after")
    def _ids_match_location(self) -> ModelSpec:
        uri = _as_value_error(ArtifactURI.parse, self.artifactLocation)
        if (uri.model_id, uri.version_id) != (self.id, self.modelVersionID):
            raise ValueError(
                f"id/modelVersionID ({self.id}/{self.modelVersionID}) do not match artifactLocation "
                f"({uri.model_id}/{uri.version_id})"
            )
        return self


class DeployedModelSpec(_Strict):
    endpointPath: str
    modelSpec: ModelSpec
    resourcePoolRef: ObjectRef | None = None

    @field_validator("endpointPath")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _ENDPOINT_PATH.match(value):
            raise ValueError("must be projects/PROJECT/locations/LOCATION/endpoints/ENDPOINT_ID")
        return value


class Destination(_Strict):
    serviceRef: ObjectRef
    trafficPercentage: int = Field(default=100, ge=0, le=100)
    grpcPort: int | None = None
    httpPort: int | None = None


class EndpointSpec(_Strict):
    id: str | None = None
    createDns: bool = True
    destinations: list[Destination] = Field(min_length=1)

    @model_validator(mode="after")
    def _traffic_sums_to_100(self) -> EndpointSpec:
        total = sum(d.trafficPercentage for d in self.destinations)
        if total != 100:
            raise ValueError(f"destinations[].trafficPercentage must add up to 100 (got {total})")
        return self


SPECS: dict[str, type[_Strict]] = {
    "ResourcePool": ResourcePoolSpec,
    "DeployedModel": DeployedModelSpec,
    "Endpoint": EndpointSpec,
}


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apiVersion: str
    kind: Literal["ResourcePool", "DeployedModel", "Endpoint"]
    metadata: Metadata
    spec: dict[str, Any]
    status: dict[str, Any] | None = None


def canonical_kind(kind: str) -> str:
    found = KIND_ALIASES.get(kind.lower()) or (kind if kind in KINDS else None)
    if found is None:
        raise UsageError(
            f"unknown resource kind {kind!r}", code="resource.unknown-kind", hint="use one of: " + ", ".join(KINDS)
        )
    return found


def validate(document: Any, where: str, default_namespace: str) -> dict[str, Any]:
    """Validate one manifest document; returns it normalised (namespace filled, spec as given)."""
    if not isinstance(document, dict):
        raise UsageError(f"{where}: expected a mapping with apiVersion, kind, metadata, spec", code="resource.invalid")
    try:
        doc = Document.model_validate(document)
        if doc.apiVersion not in API_VERSIONS:
            raise UsageError(
                f"{where}: apiVersion {doc.apiVersion!r} is not served here",
                code="resource.invalid",
                hint=f"use apiVersion: {API_VERSIONS[0]}",
            )
        spec = SPECS[doc.kind].model_validate(doc.spec)
    except ValidationError as exc:
        prefix = "spec." if "doc" in locals() else ""
        raise UsageError(
            f"{where}: invalid {document.get('kind', 'resource')}",
            code="resource.invalid",
            details=_explain(exc, prefix, SPECS.get(str(document.get("kind")))),
            hint="fix the fields named above; nothing was applied",
        ) from None
    metadata = doc.metadata.model_dump(exclude_none=True)
    metadata["namespace"] = doc.metadata.namespace or default_namespace
    return {
        "apiVersion": doc.apiVersion,
        "kind": doc.kind,
        "metadata": metadata,
        "spec": spec.model_dump(exclude_none=True),
    }


def _explain(exc: ValidationError, prefix: str, model: type[BaseModel] | None) -> str:
    lines = []
    for error in exc.errors():
        path = prefix + ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            allowed = _allowed_fields(model, error["loc"][:-1]) if prefix else "apiVersion, kind, metadata, spec"
            lines.append(f"  {path}: unknown field; allowed here: {allowed}")
        elif error["type"] == "missing":
            lines.append(f"  {path}: required field is missing")
        else:
            lines.append(f"  {path or '(document)'}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _allowed_fields(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        args = getattr(annotation, "__args__", ()) or (annotation,)
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return ", ".join(model.model_fields) if model else "?"


def endpoint_path_parts(path: str) -> dict[str, str]:
    match = _ENDPOINT_PATH.match(path)
    return match.groupdict() if match else {}
