"""JSON predict bodies -> numpy inputs, following ``FillPredictRequestFromJson`` (json_tensor.cc).

A fast numpy path handles well-formed numeric bodies; anything it rejects is re-run through the
element-by-element path, which raises TF Serving's exact messages.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from . import errors
from .json_values import B64_RE, dtype_string, json_type, value_to_string

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_F32_MAX = float(np.finfo(np.float32).max)


@cache
def _np_dtype(enum_value: int) -> Any:
    from tensorflow.python.framework import dtypes

    return dtypes.as_dtype(enum_value).as_numpy_dtype


def _type_error(val: Any, enum_value: int) -> errors.ServingError:
    return errors.invalid_argument(
        f"JSON Value: {value_to_string(val)} Type: {json_type(val)} is not of expected type: {dtype_string(enum_value)}"
    )


def _lossy(val: Any, target: str) -> errors.ServingError:
    return errors.invalid_argument(
        f"Cannot convert JSON value: {value_to_string(val)} to {target} without loss of precision."
    )


def is_b64_object(val: Any) -> bool:
    return isinstance(val, dict) and len(val) == 1 and isinstance(val.get("b64"), str)


def decode_b64(val: Any) -> bytes:
    if not is_b64_object(val):
        raise errors.invalid_argument(f"JSON Value: {value_to_string(val)} not formatted correctly for base64 data")
    s = val["b64"]
    if not B64_RE.match(s) or len(s) % 4 == 1:
        raise errors.invalid_argument("Unable to base64 decode")
    try:
        return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.invalid_argument("Unable to base64 decode") from exc


def _converter(enum_value: int) -> Callable[[Any], Any]:
    """``AddValueToTensor`` for one dtype: JSON scalar -> Python value, or raise."""
    name = dtype_string(enum_value)

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def conv(v: Any) -> Any:
        if name in ("float", "double"):
            if not (is_int(v) or isinstance(v, float)) or (is_int(v) and not INT64[0] <= v < 2**64):
                if is_int(v):  # beyond uint64 rapidjson parses a double
                    v = float(v)
                else:
                    raise _type_error(v, enum_value)
            max_int = (1 << (24 if name == "float" else 53)) - 1
            if is_int(v) and abs(v) > max_int:
                raise _lossy(v, name)
            if name == "float" and isinstance(v, float) and v == v and abs(v) != float("inf") and abs(v) > _F32_MAX:
                raise _lossy(v, name)
            return float(v)
        if name in ("int32", "int16", "int8", "uint8"):
            if not is_int(v) or not INT32[0] <= v <= INT32[1]:
                raise _type_error(v, enum_value)
            return v
        if name == "int64":
            if not is_int(v) or not INT64[0] <= v <= INT64[1]:
                raise _type_error(v, enum_value)
            return v
        if name == "uint32":
            if not is_int(v) or not 0 <= v < 2**32:
                raise _type_error(v, enum_value)
            return v
        if name == "uint64":
            if not is_int(v) or not 0 <= v < 2**64:
                raise _type_error(v, enum_value)
            return v
        if name == "bool":
            if not isinstance(v, bool):
                raise _type_error(v, enum_value)
            return v
        if name == "string":
            if not isinstance(v, str):
                raise _type_error(v, enum_value)
            return v.encode("utf-8")
        raise errors.unimplemented(f"Conversion of JSON Value: {value_to_string(v)} to type: {name}")

    return conv


MAX_RANK = 64
"""numpy's limit on dimensions (TensorFlow's is 254): deeper JSON is refused as INVALID_ARGUMENT, not a crash."""


def dense_shape(val: Any) -> list[int]:
    """``GetDenseTensorShape``: follow first elements down the nested lists."""
    dims: list[int] = []
    while isinstance(val, list):
        dims.append(len(val))
        if not val:
            break
        val = val[0]
    return dims


def _fill(val: Any, level: int, dims: list[int], enum_value: int, conv: Callable[[Any], Any], out: list[Any]) -> None:
    rank = len(dims)
    if not isinstance(val, list):
        if level != rank:
            raise errors.invalid_argument(
                f"JSON Value: {value_to_string(val)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(val, dict):
            if dtype_string(enum_value) != "string":
                raise _type_error(val, enum_value)
            out.append(decode_b64(val))
        else:
            out.append(conv(val))
        return
    if level >= rank:
        raise errors.invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(val) != dims[level]:
        raise errors.invalid_argument(
            f"Encountered list at unexpected size: {len(val)} at level: {level} expected size: {dims[level]}"
        )
    for v in val:
        _fill(v, level + 1, dims, enum_value, conv, out)


def _fast(val: Any, enum_value: int) -> np.ndarray | None:
    """numpy conversion for regular numeric/bool data that needs no per-element checks; else None."""
    name = dtype_string(enum_value)
    if name == "string":
        return None
    try:
        arr = np.asarray(val)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = arr.dtype.kind
    if name in ("float", "double") and kind in "if":
        if kind == "i":
            lim = (1 << (24 if name == "float" else 53)) - 1
            if arr.size and int(np.abs(arr).max()) > lim:
                return None
        elif name == "float" and arr.size:
            finite = arr[np.isfinite(arr)]
            if finite.size and float(np.abs(finite).max()) > _F32_MAX:
                return None
        return arr.astype(_np_dtype(enum_value))
    if name in ("int32", "int16", "int8", "uint8") and kind == "i":
        if arr.size and (arr.min() < INT32[0] or arr.max() > INT32[1]):
            return None
        return arr.astype(np.int32).astype(_np_dtype(enum_value))
    if name == "int64" and kind == "i":
        return arr.astype(np.int64)
    if name == "bool" and kind == "b":
        return arr
    return None


def to_array(val: Any, enum_value: int) -> np.ndarray:
    """One JSON value (scalar or nested list) -> ndarray of the signature dtype, or ServingError."""
    arr = _fast(val, enum_value)
    if arr is not None:
        return arr
    dims = dense_shape(val)
    if len(dims) > MAX_RANK:
        raise errors.invalid_argument(
            f"Too many dimensions in tensor: the JSON value nests {len(dims)} lists; this server (numpy) holds "
            f"at most {MAX_RANK}"
        )
    out: list[Any] = []
    _fill(val, 0, dims, enum_value, _converter(enum_value), out)
    np_dtype = object if dtype_string(enum_value) == "string" else _np_dtype(enum_value)
    if np_dtype is not object and dtype_string(enum_value) in ("int16", "int8", "uint8"):
        return np.array(out, dtype=np.int32).astype(np_dtype).reshape(dims)
    return np.array(out, dtype=np_dtype).reshape(dims)
