"""kubectl habits for the GDC resources: output formats (``-o name|wide|json|yaml|jsonpath=``), ``TYPE/NAME``
arguments, durations like ``300s``, and ``wait --for=condition=...|jsonpath=...=VALUE|delete``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.errors import UsageError
from sandbox.kinds import canonical_kind, qualified_kind

# Start-up time matters (scripts poll `get`): yaml and jsonpath-ng load only for the outputs that use them.

_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """``300s``, ``5m``, ``1h30m``, ``90`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match:
        raise UsageError(f"invalid duration {text!r}", code="usage.duration", hint="e.g. --timeout=300s or 5m")
    return sum(float(match[u] or 0) * f for u, f in (("h", 3600), ("m", 60), ("s", 1)))


def split_type_name(kind: str, name: str | None) -> tuple[str, str | None]:
    """``deployedmodel/NAME`` (or ``deployedmodel.prediction.aiplatform.gdc.goog/NAME``) -> (kind, NAME)."""
    if "/" in kind:
        if name:
            raise UsageError(
                f"there is no need to give a name when using TYPE/NAME ({kind} {name})",
                code="usage",
                hint=f"give {kind} alone, or the type and the name apart",
            )
        kind, name = kind.split("/", 1)
    return canonical_kind(kind), name


def resource_name(item: dict[str, Any]) -> str:
    """kubectl's ``-o name``: ``deployedmodel.prediction.aiplatform.gdc.goog/my-model``."""
    return f"{qualified_kind(item['kind'])}/{item['metadata']['name']}"


def ready_condition(item: dict[str, Any]) -> dict[str, Any]:
    """The condition that says whether a resource is ready (``status: "True"``)."""
    conditions = (item.get("status") or {}).get("conditions") or []
    return dict(conditions[0]) if conditions else {}


def format_items(items: list[dict[str, Any]], output: str, single: bool) -> str:
    """The text ``get -o OUTPUT`` prints for ``items`` (``single``: one named resource, not a list)."""
    document: Any = items[0] if single and len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items}
    if output.startswith("jsonpath="):
        from sandbox.jsonpath_template import render

        return render(document, output[len("jsonpath=") :])
    if output == "json":
        return json.dumps(document, indent=2)
    if output == "yaml":
        import yaml

        return str(yaml.safe_dump(document, sort_keys=False)).rstrip("\n")
    if output == "name":
        return "\n".join(resource_name(item) for item in items)
    if output in ("", "wide"):
        return table(items, wide=output == "wide") if items else ""
    raise UsageError(
        f"unable to match a printer suitable for the output format {output!r}",
        code="usage.output",
        hint="allowed formats are: json, jsonpath, name, wide, yaml",
    )


def table(items: list[dict[str, Any]], wide: bool = False) -> str:
    header = ["NAMESPACE", "KIND", "NAME", "READY", "REASON", "MESSAGE"]
    if wide:
        header += ["REPLICAS", "DETAIL"]
    rows = [header]
    for item in items:
        status = item.get("status") or {}
        ready = ready_condition(item)
        primary = status.get("primaryCondition") or ready
        row = [
            item["metadata"]["namespace"],
            item["kind"],
            item["metadata"]["name"],
            ready.get("status", "-"),
            primary.get("reason", "-"),
            primary.get("message", "")[:80],
        ]
        if wide:
            row += _wide_columns(item)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def _wide_columns(item: dict[str, Any]) -> list[str]:
    spec, status = item["spec"], item.get("status") or {}
    replicas = f"{status.get('currentReplicas', 0)}/{status.get('desiredReplicas', 0)}"
    if item["kind"] == "DeployedModel":
        model = spec["modelSpec"]
        return [replicas, f"{model['modelContainerSpec']['imageURI']} {status.get('servingArtifact', '')}".strip()]
    if item["kind"] == "ResourcePool":
        dedicated = spec.get("dedicatedResources") or {}
        scaling = dedicated.get("autoscaling") or {}
        span = f"min {scaling.get('minReplica', 1)} max {scaling.get('maxReplica', scaling.get('minReplica', 1))}"
        machine = (dedicated.get("machineSpec") or {}).get("machineType", "")
        return [replicas, f"{machine} {span}"]
    shares = ", ".join(
        f"{d['serviceRef']['name']}={d.get('trafficPercentage', 100)}%" for d in spec.get("destinations", [])
    )
    return ["-", f"{status.get('endpointFQDN', '')} {shares}".strip()]


@dataclass
class WaitFor:
    """A parsed ``--for``: ``condition=NAME[=VALUE]``, ``jsonpath=TEMPLATE[=VALUE]`` or ``delete``."""

    text: str
    test: Callable[[dict[str, Any] | None], bool]


def parse_wait_for(text: str) -> WaitFor:
    if text == "delete":
        return WaitFor(text, lambda item: item is None)
    if text.startswith("condition="):
        name, _, wanted = text[len("condition=") :].partition("=")
        return WaitFor(text, lambda item: _condition_is(item, name, wanted or "True"))
    if text.startswith("jsonpath="):
        from sandbox.jsonpath_template import render

        expression, value = _split_jsonpath(text[len("jsonpath=") :])
        render({}, expression)  # reject a bad template now, not after the timeout

        def test(item: dict[str, Any] | None) -> bool:
            found = render(item, expression) if item is not None else ""
            return found == value if value is not None else found != ""

        return WaitFor(text, test)
    raise UsageError(
        f"unrecognized condition: {text!r}",
        code="usage.wait",
        hint="use --for=condition=Ready, --for=jsonpath='{.status.primaryCondition.reason}'=Ready or --for=delete",
    )


def _split_jsonpath(text: str) -> tuple[str, str | None]:
    end = text.rfind("}")
    if not text.startswith("{") or end < 0:
        raise UsageError(
            f"jsonpath wait format must be --for=jsonpath='{{EXPR}}'=VALUE (got {text!r})", code="usage.wait"
        )
    rest = text[end + 1 :]
    return text[: end + 1], rest[1:] if rest.startswith("=") else None


def _condition_is(item: dict[str, Any] | None, name: str, value: str) -> bool:
    if item is None:
        return False
    generation = item["metadata"].get("generation")
    for cond in (item.get("status") or {}).get("conditions") or []:
        if cond.get("type", "").lower() == name.lower():
            current = cond.get("observedGeneration") in (None, generation)
            return current and str(cond.get("status", "")).lower() == value.lower()
    return False
