"""A DeployedModel's status conditions, shaped as GDC prints them.

``status.primaryCondition`` has exactly GDC's keys, so a script written against the sandbox runs on
GDC. ``status.conditions`` holds the Kubernetes-style ``Ready`` condition (``status: "True"``) that
``gdc-sandbox wait --for=condition=Ready`` reads.
"""

from __future__ import annotations

from typing import Any

from sandbox.control.store import now_rfc3339

PRIMARY_KEYS = (
    "firstObservedTime",
    "lastUpdateTime",
    "message",
    "observedGeneration",
    "reason",
    "resourceName",
    "type",
)
READY_REASON = "Ready"
READY_MESSAGE = "DeployedModel is ready"


def primary_condition(
    name: str, generation: int, reason: str, message: str, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GDC's primaryCondition; ``firstObservedTime`` stays while the reason and generation stay."""
    now = now_rfc3339()
    previous = previous or {}
    unchanged = previous.get("reason") == reason and previous.get("observedGeneration") == generation
    return {
        "firstObservedTime": previous.get("firstObservedTime", now) if unchanged else now,
        "lastUpdateTime": now,
        "message": message,
        "observedGeneration": generation,
        "reason": reason,
        "resourceName": name,
        "type": "DeployedModel",
    }


def ready_condition(primary: dict[str, Any]) -> dict[str, Any]:
    """The Kubernetes-style condition for ``status.conditions``."""
    return {
        "type": "Ready",
        "status": "True" if primary["reason"] == READY_REASON else "False",
        "reason": primary["reason"],
        "message": primary["message"],
        "lastTransitionTime": primary["firstObservedTime"],
        "observedGeneration": primary["observedGeneration"],
    }


def with_condition(status: dict[str, Any], name: str, generation: int, reason: str, message: str) -> dict[str, Any]:
    """``status`` with its primaryCondition and conditions set (a new dict)."""
    primary = primary_condition(name, generation, reason, message, status.get("primaryCondition"))
    return {**status, "primaryCondition": primary, "conditions": [ready_condition(primary)]}


def normalised(status: dict[str, Any], name: str) -> dict[str, Any]:
    """Status stored by an older sandbox (primaryCondition with ``status``/``lastTransitionTime``) in today's
    shape; current status is returned as it is."""
    primary = status.get("primaryCondition")
    if not primary or set(primary) == set(PRIMARY_KEYS):
        return status
    when = primary.get("lastTransitionTime") or now_rfc3339()
    fixed = {
        "firstObservedTime": primary.get("firstObservedTime", when),
        "lastUpdateTime": primary.get("lastUpdateTime", when),
        "message": primary.get("message", ""),
        "observedGeneration": primary.get("observedGeneration", status.get("observedGeneration", 0)),
        "reason": primary.get("reason", ""),
        "resourceName": name,
        "type": primary.get("type", "DeployedModel"),
    }
    return {**status, "primaryCondition": fixed, "conditions": [ready_condition(fixed)]}
