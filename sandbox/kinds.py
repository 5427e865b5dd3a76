"""The GDC resource kinds, their API groups and the names kubectl users type for them (standard library only:
the CLI reads these on every `get`)."""

from __future__ import annotations

from sandbox.errors import UsageError

PREDICTION_API = "prediction.aiplatform.gdc.goog/v1"
ENDPOINT_API = "aiplatform.gdc.goog/v1"
API_VERSION_OF = {"ResourcePool": PREDICTION_API, "DeployedModel": PREDICTION_API, "Endpoint": ENDPOINT_API}
KINDS = tuple(API_VERSION_OF)
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


def canonical_kind(kind: str) -> str:
    """``dm``, ``deployedmodels``, ``DeployedModel`` or kubectl's ``deployedmodel.prediction.aiplatform.gdc.goog``."""
    bare = kind.split(".", 1)[0] if kind.lower().endswith(".gdc.goog") else kind
    found = KIND_ALIASES.get(bare.lower()) or (bare if bare in KINDS else None)
    if found is None:
        raise UsageError(
            f"unknown resource kind {kind!r}", code="resource.unknown-kind", hint="use one of: " + ", ".join(KINDS)
        )
    return found


def qualified_kind(kind: str) -> str:
    """kubectl's ``kind.group`` spelling: ``deployedmodel.prediction.aiplatform.gdc.goog``."""
    return f"{kind.lower()}.{API_VERSION_OF[kind].split('/')[0]}"
