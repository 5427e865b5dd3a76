"""numpy <-> ``TensorProto`` for the gRPC layer (outputs in value fields, as TF Serving's ``AsProtoField``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import errors


def to_ndarray(alias: str, proto: Any) -> np.ndarray:
    """Decode a request tensor; a malformed one is ``tensor parsing error: alias``."""
    import tensorflow as tf

    try:
        return tf.make_ndarray(proto)
    except Exception as exc:
        raise errors.invalid_argument(f"tensor parsing error: {alias}") from exc


def to_proto_field(arr: np.ndarray, out: Any) -> None:
    """Fill ``out`` (a TensorProto) with dtype, shape and the typed ``*_val`` field."""
    from tensorflow.python.framework import dtypes

    dt = dtypes.as_dtype(arr.dtype if arr.dtype.kind not in "OSU" else np.object_)
    out.dtype = dt.as_datatype_enum
    for d in arr.shape:
        out.tensor_shape.dim.add().size = d
    flat = arr.ravel()
    kind = arr.dtype
    if kind == np.float32:
        out.float_val.extend(flat.tolist())
    elif kind == np.float64:
        out.double_val.extend(flat.tolist())
    elif kind == np.float16:
        out.half_val.extend(flat.view(np.uint16).tolist())
    elif kind in (np.int32, np.int16, np.int8, np.uint8, np.uint16):
        out.int_val.extend(flat.tolist())
    elif kind == np.int64:
        out.int64_val.extend(flat.tolist())
    elif kind == np.uint32:
        out.uint32_val.extend(flat.tolist())
    elif kind == np.uint64:
        out.uint64_val.extend(flat.tolist())
    elif kind == np.bool_:
        out.bool_val.extend(flat.tolist())
    elif arr.dtype.kind in "OSU":
        out.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat.tolist())
    else:
        import tensorflow as tf

        out.CopyFrom(tf.make_tensor_proto(arr))
