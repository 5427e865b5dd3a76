"""What :class:`sandbox.engine.Sandbox` calls return: a deployment and an endpoint's answer.

Kept apart from the engine, which imports them where they are made: `gdc-sandbox check` imports the engine and
starts without loading :mod:`dataclasses` (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Deployment:
    deployed_model: str
    namespace: str
    endpoint: str
    deployed_model_id: str
    predict_url: str
    endpoint_url: str
    warnings: list[str]
    replaced: list[dict[str, Any]] = field(default_factory=list)
    """What served the endpoint before and no longer does (deleted, when `deploy` had put it there)."""
    traffic: list[dict[str, Any]] = field(default_factory=list)
    """The endpoint's split now: ``{"deployedModel", "trafficPercentage"}`` per destination."""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    """The preflight checker's warnings and notes on the artifact (errors refuse the deploy)."""
    resource_pool: str = ""


@dataclass
class Prediction:
    """One answer of an endpoint: HTTP status, parsed body, and the gateway's warnings (``Warning`` headers)."""

    status: int
    body: Any
    warnings: list[str]
