"""The GDC prediction resources and their validation.

``ResourcePool`` and ``DeployedModel`` are ``prediction.aiplatform.gdc.goog/v1``; ``Endpoint`` is
``aiplatform.gdc.goog/v1``. Every field GDC's KRM reference documents is accepted; ModelSpec's fields
(not in the reference) follow the how-to page's example. Unknown fields are rejected with their path
and the allowed names; every problem of a document is reported at once, and nothing is changed.
Fields the sandbox cannot honour are accepted and reported by :func:`advisories`.
"""

from __future__ import annotations

import re
import types
from typing import Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox.control.container_args import container_advisories
from sandbox.errors import SandboxError, UsageError
from sandbox.images import resolve
from sandbox.kinds import API_VERSION_OF, KINDS
from sandbox.uri import ArtifactURI

DEFAULT_MACHINE_TYPE = "n2-standard-2-gdc"
MACHINE_TYPES = {
    # vCPUs of each type: the CPU request a replica gets, against which cpuTarget is measured.
    DEFAULT_MACHINE_TYPE: 2,  # the default for CPU models, not a node type
    "n2-standard-4-gdc": 4,
    "n2-standard-8-gdc": 8,
    "n2-standard-16-gdc": 16,
    "n2-standard-32-gdc": 32,
    "n2-highmem-4-gdc": 4,
    "n2-highmem-8-gdc": 8,
    "n2-highmem-16-gdc": 16,
    "n2-highmem-32-gdc": 32,
    "a2-highgpu-1g-gdc": 12,
    "a2-ultragpu-1g-gdc": 12,
    "a2-ultragpu-2g-gdc": 24,
    "a3-highgpu-1g-gdc": 26,
    "a3-highgpu-2g-gdc": 52,
    "a3-highgpu-4g-gdc": 104,
}
ACCELERATORS = ("nvidia-a100-80gb",)
SERVICE_KINDS = ("DeployedModel", "MicroService", "Service")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENDPOINT_PATH = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/endpoints/(?P<endpoint>[^/]+)$"
)
_MODEL_RESOURCE_NAME = re.compile(r"^models/(?P<id>[^/]+)/(?P<version>[^/]+)$")
FORCE_ANNOTATION = "sandbox.gdc.goog/skip-preflight"
ATTACH_ANNOTATION = "sandbox.gdc.goog/attach-to-endpoint"
"""Set by `gdc-sandbox deploy`: once Ready, the DeployedModel takes the endpoint's traffic and replaces
the DeployedModel the shorthand deployed there before."""


def _one_of(value: str | None, allowed: tuple[str, ...] | dict[str, Any], what: str) -> str | None:
    """A field validator's check: ``value`` (when given) must be one of ``allowed``."""
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
    return value


def _as_value_error(parse: Any, value: str) -> Any:
    """Run a parser that raises SandboxError so pydantic reports its message under the field's path."""
    try:
        return parse(value)
    except SandboxError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ObjectReference(_Strict):
    """A Kubernetes ObjectReference: every field is legal; ``name`` is what the sandbox needs."""

    apiVersion: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    fieldPath: str | None = None


class ResourcePoolRef(ObjectReference):
    @field_validator("kind")
    @classmethod
    def _pool(cls, value: str | None) -> str | None:
        if value not in (None, "ResourcePool"):
            raise ValueError(f"must be ResourcePool (got {value!r})")
        return value


class ServiceRef(ObjectReference):
    kind: str = "DeployedModel"

    @field_validator("kind")
    @classmethod
    def _service_kind(cls, value: str) -> str | None:
        return _one_of(value, SERVICE_KINDS, "kind")


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
    machineType: str = DEFAULT_MACHINE_TYPE
    acceleratorType: str | None = None
    acceleratorCount: int | None = Field(default=None, ge=0, description="in 1/7 slices of a GPU")

    @field_validator("machineType")
    @classmethod
    def _known_machine(cls, value: str) -> str | None:
        return _one_of(value, MACHINE_TYPES, "machine type")

    @field_validator("acceleratorType")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        return _one_of(value or None, ACCELERATORS, "accelerator")


class Autoscaling(_Strict):
    minReplica: int = Field(default=1, ge=1)
    maxReplica: int | None = Field(default=None, ge=1, description="default: minReplica")
    cpuTarget: int | None = Field(default=None, ge=1, description="CPU usage (%) above which a replica is added")
    gpuDutyCycleTarget: int | None = Field(default=None, ge=1)


class DedicatedResources(_Strict):
    machineSpec: MachineSpec = Field(default_factory=MachineSpec)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)


class ResourcePoolSpec(_Strict):
    resourcePoolID: str
    enableContainerLogging: bool = False
    dedicatedResources: DedicatedResources = Field(default_factory=DedicatedResources)


class ModelContainerSpec(_Strict):
    imageURI: str
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=lambda: [8080])
    grpcPorts: list[int] = Field(default_factory=list)

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
    modelResourceName: str | None = None
    modelContainerSpec: ModelContainerSpec

    @field_validator("modelVersionID", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f'must be a string: quote it (modelVersionID: "{value}")')
        return value


class DeployedModelSpec(_Strict):
    endpointPath: str
    modelSpec: ModelSpec
    resourcePoolRef: ResourcePoolRef | None = None
    sharesResourcePool: bool | None = None

    @field_validator("endpointPath")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _ENDPOINT_PATH.match(value):
            raise ValueError("must be projects/PROJECT/locations/LOCATION/endpoints/ENDPOINT_ID")
        return value


class Destination(_Strict):
    serviceRef: ServiceRef
    trafficPercentage: int = Field(default=100, ge=0, le=100)
    grpcPort: int | None = None
    httpPort: int | None = None


class EndpointSpec(_Strict):
    id: str | None = None
    userProvidedID: str | None = None
    createDns: bool = True
    dnsName: str | None = Field(default=None, description="deprecated")
    destinations: list[Destination] = Field(min_length=1)


class _Document(_Strict):
    """A whole manifest, validated in one pass so that every problem is reported together."""

    kind_name: ClassVar[str]
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: BaseModel
    status: dict[str, Any] | None = None

    @field_validator("apiVersion")
    @classmethod
    def _served_version(cls, value: str) -> str:
        expected = API_VERSION_OF[cls.kind_name]
        if value != expected:
            raise ValueError(f'no matches for kind "{cls.kind_name}" in version "{value}"; use apiVersion: {expected}')
        return value


class ResourcePoolDocument(_Document):
    kind_name = "ResourcePool"
    spec: ResourcePoolSpec


class DeployedModelDocument(_Document):
    kind_name = "DeployedModel"
    spec: DeployedModelSpec


class EndpointDocument(_Document):
    kind_name = "Endpoint"
    spec: EndpointSpec


DOCUMENTS: dict[str, type[_Document]] = {
    d.kind_name: d for d in (ResourcePoolDocument, DeployedModelDocument, EndpointDocument)
}


def validate(document: Any, where: str, default_namespace: str) -> dict[str, Any]:
    """Validate one manifest document; returns it normalised (namespace and defaults filled in)."""
    if not isinstance(document, dict):
        raise UsageError(f"{where}: expected a mapping with apiVersion, kind, metadata, spec", code="resource.invalid")
    kind = document.get("kind")
    model = DOCUMENTS.get(str(kind))
    if model is None:
        raise UsageError(
            f"{where}: unknown kind {kind!r}",
            code="resource.invalid",
            hint=f"kind must be one of {', '.join(KINDS)}; nothing was applied",
        )
    problems = cross_field_problems(document)
    try:
        doc = model.model_validate(document)
    except ValidationError as exc:
        problems = [*explain(exc, model), *problems]
    if problems:
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        raise UsageError(
            f"{where}: invalid {kind}" + (f" {name!r}" if name else ""),
            code="resource.invalid",
            details="\n".join(f"  {line}" for line in problems),
            hint="fix the fields named above; nothing was applied",
        )
    metadata = doc.metadata.model_dump(exclude_none=True)
    metadata["namespace"] = doc.metadata.namespace or default_namespace
    return {
        "apiVersion": doc.apiVersion,
        "kind": doc.kind,
        "metadata": metadata,
        "spec": doc.spec.model_dump(exclude_none=True),
    }


def field_path(loc: tuple[Any, ...]) -> str:
    """``("spec", "destinations", 0, "serviceRef")`` -> ``spec.destinations[0].serviceRef``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def explain(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem: the field path, what is wrong, and what is allowed."""
    lines = []
    for error in exc.errors():
        path = field_path(error["loc"]) or "(document)"
        if error["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field; allowed here: {_allowed_fields(model, error['loc'][:-1])}")
        elif error["type"] == "missing":
            lines.append(f"{path}: required field is missing")
        else:
            lines.append(f"{path}: {error['msg'].removeprefix('Value error, ')}")
    return lines


def cross_field_problems(document: dict[str, Any]) -> list[str]:
    """Rules between fields, checked on the raw document so that they are reported together with every
    field error (a model validator would run only once all fields are valid)."""
    spec = _dig(document, "spec")
    kind, problems = document.get("kind"), []
    if kind == "ResourcePool":
        scaling = _dig(spec, "dedicatedResources", "autoscaling")
        low, high = scaling.get("minReplica", 1), scaling.get("maxReplica")
        if isinstance(low, int) and isinstance(high, int) and high < low:
            problems.append(
                f"spec.dedicatedResources.autoscaling: maxReplica ({high}) must be >= minReplica ({low})"
            )
    elif kind == "DeployedModel":
        model = _dig(spec, "modelSpec")
        location, version = model.get("artifactLocation"), model.get("modelVersionID")
        if isinstance(location, str) and isinstance(version, (str, int)):
            try:
                version_folder(location, str(version))
            except SandboxError as exc:
                problems.append(f"spec.modelSpec: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
    elif kind == "Endpoint":
        destinations = spec.get("destinations")
        listed = destinations if isinstance(destinations, list) else []
        shares = [d.get("trafficPercentage", 100) for d in listed if isinstance(d, dict)]
        if destinations and all(isinstance(p, int) for p in shares) and sum(shares) != 100:
            problems.append(f"spec: destinations[].trafficPercentage must add up to 100 (got {sum(shares)})")
    return problems


def _dig(mapping: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping if isinstance(mapping, dict) else {}


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union, types.UnionType):
        return next((m for m in map(_submodel, get_args(annotation)) if m is not None), None)
    return None


def _allowed_fields(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _submodel(field.annotation) if field else None
    return ", ".join(model.model_fields) if model else "?"


def version_folder(artifact_location: str, model_version_id: str) -> ArtifactURI:
    """The version folder a ModelSpec serves: ``artifactLocation`` is the model folder that holds the
    version folders (GDC's how-to), or already the version folder whose last segment is the version."""
    location = artifact_location.rstrip("/")
    if location.rsplit("/", 1)[-1] == model_version_id:
        try:
            return ArtifactURI.parse(location)
        except SandboxError:
            pass
    try:
        return ArtifactURI.parse(f"{location}/{model_version_id}")
    except SandboxError:
        pass
    try:
        given = ArtifactURI.parse(location)
    except SandboxError as exc:
        if "expected exactly MODEL_ID/MODEL_VERSION_ID" not in exc.message:
            raise  # wrong in itself (not s3://, a file, a bad bucket name), not just in depth
        given = None
    if given is not None:
        raise UsageError(
            f"artifactLocation {artifact_location!r} is the version folder {given.version_id!r}, "
            f"but modelVersionID is {model_version_id!r}",
            code="resource.version-mismatch",
            hint=f"set modelVersionID: {given.version_id!r}, or artifactLocation: s3://{given.bucket}/{given.model_id}",
        )
    raise UsageError(
        f"artifactLocation {artifact_location!r} is not s3://BUCKET/MODEL_ID (holding the version folder "
        f"{model_version_id!r}) nor s3://BUCKET/MODEL_ID/{model_version_id}",
        code="resource.artifact-location",
        hint='e.g. artifactLocation: s3://models/my-model with modelVersionID: "1" serves s3://models/my-model/1/',
    )


def serving_uri(model_spec: dict[str, Any]) -> ArtifactURI:
    return version_folder(model_spec["artifactLocation"], model_spec["modelVersionID"])


def pool_autoscaling(pool: dict[str, Any] | None) -> Autoscaling:
    """A ResourcePool's autoscaling with defaults filled in (no pool: one replica)."""
    spec = ((pool or {}).get("spec") or {}).get("dedicatedResources") or {}
    return Autoscaling.model_validate(spec.get("autoscaling") or {})


def pool_machine(pool: dict[str, Any] | None) -> MachineSpec:
    """A ResourcePool's machine; a pool stored by an older sandbox with a type GDC does not have (such as
    ``n2-highmem-2-gdc``) counts as the default machine."""
    spec = ((pool or {}).get("spec") or {}).get("dedicatedResources") or {}
    try:
        return MachineSpec.model_validate(spec.get("machineSpec") or {})
    except ValidationError:
        return MachineSpec()


def advisories(resource: dict[str, Any]) -> list[str]:
    """Warnings for a valid resource: documented fields the sandbox accepts but cannot honour."""
    spec, notes = resource["spec"], []
    if resource["kind"] == "ResourcePool":
        dedicated = spec.get("dedicatedResources") or {}
        machine = dedicated.get("machineSpec") or {}
        if machine.get("acceleratorType") or machine.get("acceleratorCount"):
            notes.append("spec.dedicatedResources.machineSpec: the sandbox has no GPUs; replicas run on the CPU")
        if (dedicated.get("autoscaling") or {}).get("gpuDutyCycleTarget") is not None:
            notes.append(
                "spec.dedicatedResources.autoscaling.gpuDutyCycleTarget: no GPUs here; the sandbox scales on "
                "CPU usage (cpuTarget, default 60)"
            )
    elif resource["kind"] == "DeployedModel":
        model = spec["modelSpec"]
        named = _MODEL_RESOURCE_NAME.match(model.get("modelResourceName") or "")
        if model.get("modelResourceName") and (
            not named or (named["id"], named["version"]) != (model["id"], model["modelVersionID"])
        ):
            notes.append(
                f"spec.modelSpec.modelResourceName {model['modelResourceName']!r} is not "
                f"models/{model['id']}/{model['modelVersionID']} (models/<id>/<modelVersionID>)"
            )
        if spec.get("sharesResourcePool"):
            notes.append("spec.sharesResourcePool has no effect in the sandbox: each DeployedModel has its own pods")
        container = model["modelContainerSpec"]
        notes += container_advisories(
            resolve(container["imageURI"]), container.get("command", []), container.get("args", [])
        )
    else:
        if spec.get("dnsName"):
            notes.append("spec.dnsName is deprecated on GDC and ignored; the endpoint's address is status.endpointFQDN")
        for i, dest in enumerate(spec["destinations"]):
            ref = dest["serviceRef"]
            if ref.get("kind", "DeployedModel") != "DeployedModel":
                notes.append(
                    f"spec.destinations[{i}].serviceRef: kind {ref['kind']} is not routable by the sandbox "
                    f"(it routes only to DeployedModels); requests sent to {ref['name']} answer 503"
                )
    return notes


def endpoint_path_parts(path: str) -> dict[str, str]:
    match = _ENDPOINT_PATH.match(path)
    return match.groupdict() if match else {}
