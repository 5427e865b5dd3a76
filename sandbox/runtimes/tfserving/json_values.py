"""JSON value helpers shared by request parsing and response writing (rapidjson's behaviour)."""

from __future__ import annotations

import json
import math
import re
from functools import cache
from typing import Any

import numpy as np

from . import errors


@cache
def dtype_string(enum_value: int) -> str:
    """``DataTypeString`` for a ``DataType`` enum value (DT_FLOAT -> ``float``)."""
    from tensorflow.core.framework import types_pb2

    name = types_pb2.DataType.Name(enum_value)
    return name[3:].lower() if name.startswith("DT_") else name


def json_type(val: Any) -> str:
    """rapidjson ``GetType()`` name."""
    if val is None:
        return "Null"
    if val is True:
        return "True"
    if val is False:
        return "False"
    if isinstance(val, dict):
        return "Object"
    if isinstance(val, list):
        return "Array"
    if isinstance(val, str):
        return "String"
    return "Number"


def write_decimal(v: float, single: bool) -> str:
    """json_tensor.cc ``WriteDecimal``: six significant digits unless that does not round-trip."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "-Infinity" if v < 0 else "Infinity"
    s = format(v, "g")
    back = float(np.float32(float(s))) if single else float(s)
    if back != v:
        s = format(v, ".9g" if single else ".17g")
    if "." not in s and "e" not in s:
        s += ".0"
    return s


def value_to_string(val: Any) -> str:
    """``JsonValueToString``: pretty-printed JSON of ``val`` as rapidjson's PrettyWriter writes it."""
    if isinstance(val, float):
        return write_decimal(val, float(np.float32(val)) == val if math.isfinite(val) else True)
    return json.dumps(val, indent=4, ensure_ascii=False, allow_nan=True)


_PY_TO_RAPIDJSON = [
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
    ("Invalid control character", "Invalid encoding in string."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Expecting value", "Invalid value."),
]


def _open_container(text: str, pos: int) -> str:
    """Innermost bracket open at ``pos`` (to choose rapidjson's comma message)."""
    stack: list[str] = []
    in_str = esc = False
    for ch in text[:pos]:
        if in_str:
            esc, in_str = (False, True) if esc else (ch == "\\", ch != '"')
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def parse_json(body: bytes) -> Any:
    """Parse a request body like ``ParseJson`` in json_tensor.cc (NaN/Infinity accepted)."""
    if not body.strip():
        raise errors.invalid_argument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = "Invalid value."
        if exc.msg.startswith("Expecting ',' delimiter"):
            msg = ("Missing a comma or '}' after an object member." if _open_container(text, exc.pos) == "{"
                   else "Missing a comma or ']' after an array element.")
        else:
            msg = next((r for p, r in _PY_TO_RAPIDJSON if exc.msg.startswith(p)), msg)
        raise errors.invalid_argument(f"JSON Parse error: {msg} at offset: {exc.pos}") from exc
    if not isinstance(doc, dict):
        raise errors.invalid_argument(f"JSON Value: {value_to_string(doc)} Is not object")
    return doc


B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
