"""Outputs -> JSON text, following ``MakeJsonFromTensors`` and friends in json_tensor.cc."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from . import errors
from .json_values import dtype_string, write_decimal

_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _float_tokens(arr: np.ndarray) -> list[str]:
    """``WriteDecimal`` for every element: ``%g`` unless that does not round-trip, then 9 or 17 digits."""
    single = arr.dtype in (np.float32, np.float16)
    flat = arr.astype(np.float32 if single else np.float64).ravel()
    values = flat.tolist()
    toks = [format(v, "g") for v in values]
    back = np.array(toks, dtype=np.float64)
    if single:
        back = back.astype(np.float32)
    with np.errstate(invalid="ignore"):
        bad = np.nonzero((back != flat) & np.isfinite(flat))[0]
    precise = ".9g" if single else ".17g"
    for i in bad.tolist():
        toks[i] = format(values[i], precise)
    out = []
    for t in toks:
        if t in _SPECIAL:
            out.append(_SPECIAL[t])
        elif "." in t or "e" in t:
            out.append(t)
        else:
            out.append(t + ".0")
    return out


def _tokens(name: str, arr: np.ndarray) -> list[str]:
    """Flat JSON tokens for every element of ``arr`` (``AddSingleValueAndAdvance``)."""
    kind = arr.dtype.kind
    if kind == "f":
        return _float_tokens(arr)
    if kind in "iu":
        return [str(v) for v in arr.ravel().tolist()]
    if kind == "b":
        return ["true" if v else "false" for v in arr.ravel().tolist()]
    if kind in "OSU":
        as_bytes = name.endswith("_bytes")
        out = []
        for v in arr.ravel().tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            if as_bytes:
                out.append('{"b64": "' + base64.b64encode(b).decode("ascii") + '"}')
            else:
                out.append(json.dumps(b.decode("utf-8", errors="replace"), ensure_ascii=False))
        return out
    from tensorflow.python.framework import dtypes

    raise errors.invalid_argument(
        f"Failed to write JSON value for tensor type: {dtype_string(dtypes.as_dtype(arr.dtype).as_datatype_enum)}"
    )


def _nest(toks: list[str], shape: tuple[int, ...]) -> str:
    if not shape:
        return toks[0]
    if len(shape) == 1:
        return "[" + ", ".join(toks) + "]"
    step = int(np.prod(shape[1:]))
    return "[" + ", ".join(_nest(toks[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


def predict_json(outputs: dict[str, np.ndarray], fmt: str) -> str:
    """``{"predictions": ...}`` (row) or ``{"outputs": ...}`` (columnar)."""
    if not outputs:
        raise errors.invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == "columnar":
        if len(names) == 1:
            a = outputs[names[0]]
            return '{"outputs": ' + _nest(_tokens(names[0], a), a.shape) + "}"
        parts = [json.dumps(n) + ": " + _nest(_tokens(n, outputs[n]), outputs[n].shape) for n in names]
        return '{"outputs": {' + ", ".join(parts) + "}}"
    batch = -1
    for n in names:
        a = outputs[n]
        if a.ndim == 0:
            raise errors.invalid_argument(f"Tensor name: {n} has no shape information ")
        if batch >= 0 and a.shape[0] != batch:
            raise errors.invalid_argument(
                f"Tensor name: {n} has inconsistent batch size: {a.shape[0]} expecting: {batch}"
            )
        batch = a.shape[0]
    per = {n: (_tokens(n, outputs[n]), outputs[n].shape[1:], int(np.prod(outputs[n].shape[1:]))) for n in names}
    rows = []
    for i in range(batch):
        cells = []
        for n in names:
            toks, inner, step = per[n]
            cells.append((n, _nest(toks[i * step:(i + 1) * step], inner)))
        if len(names) == 1:
            rows.append(cells[0][1])
        else:
            rows.append("{" + ", ".join(json.dumps(n) + ": " + v for n, v in cells) + "}")
    return '{"predictions": [' + ", ".join(rows) + "]}"


def classification_json(result: Any) -> str:
    if not result.classifications:
        raise errors.invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for c in result.classifications:
        rows.append("[" + ", ".join(
            "[" + json.dumps(x.label, ensure_ascii=False) + ", " + write_decimal(x.score, True) + "]" for x in c.classes
        ) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def regression_json(result: Any) -> str:
    if not result.regressions:
        raise errors.invalid_argument("Cannot convert empty RegressionResults to JSON")
    return '{"results": [' + ", ".join(write_decimal(r.value, True) for r in result.regressions) + "]}"


def error_json(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)
