"""The subset of kubectl's JSONPath the GDC docs use: ``{.status.primaryCondition}``, ``{.items[0].metadata.name}``."""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.errors import UsageError

_TOKEN = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]")


def evaluate(document: Any, expression: str) -> list[Any]:
    expr = expression.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    values = [document]
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise UsageError(
                f"unsupported jsonpath {expression!r} at {expr[pos:]!r}",
                code="get.bad-jsonpath",
                hint="use forms like {.status.primaryCondition}",
            )
        field, index = match.groups()
        nxt: list[Any] = []
        for value in values:
            if field is not None and isinstance(value, dict) and field in value:
                nxt.append(value[field])
            elif index == "*" and isinstance(value, list):
                nxt.extend(value)
            elif index is not None and index != "*" and isinstance(value, list) and int(index) < len(value):
                nxt.append(value[int(index)])
        values = nxt
        pos = match.end()
    return values


def render_jsonpath(document: Any, expression: str) -> str:
    """kubectl prints strings bare and maps/lists as JSON, several results space-separated."""
    return " ".join(v if isinstance(v, str) else json.dumps(v) for v in evaluate(document, expression))
