"""Predict / Classify / Regress JSON request bodies -> inputs (json_tensor.cc request side)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import errors
from .json_tensor import is_b64_object, to_array
from .json_values import json_type, value_to_string

ROW, COLUMNAR = "row", "columnar"


def signature_name(doc: dict[str, Any]) -> str:
    """``FillSignature``: the optional ``signature_name`` key (empty means the default)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def _shape_str(dims: list[int]) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


def _element_object(v: Any) -> bool:
    return isinstance(v, dict) and not is_b64_object(v)


def _instances(items: list[Any], infos: dict[str, int]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``; ``infos`` maps input alias -> DataType enum."""
    if not isinstance(items[0], dict) and len(infos) > 1:
        raise errors.invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    objects = _element_object(items[0])
    names = sorted(infos)
    if not objects:
        name = names[0]
        try:  # whole batch at once when it is regular
            if not any(_element_object(e) for e in items):
                arr = to_array(items, infos[name])
                if arr.ndim >= 1 and arr.shape[0] == len(items):
                    return {name: arr}
        except errors.ServingError:
            pass
    columns: dict[str, list[np.ndarray]] = {n: [] for n in names}
    shapes: dict[str, list[int]] = {}
    for i, elem in enumerate(items):
        if objects:
            if not _element_object(elem):
                raise errors.invalid_argument(f"Expecting object but got list at item {i} of input list")
            for key, value in elem.items():
                try:
                    columns_add(columns, shapes, key, value, infos)
                except errors.ServingError as exc:
                    raise errors.invalid_argument(
                        f"Failed to process element: {i} key: {key} of 'instances' list. Error: {exc.to_string()}"
                    ) from exc
            if set(elem) != set(names):
                raise errors.invalid_argument(
                    f"Failed to process element: {i} of 'instances' list. JSON object: {value_to_string(elem)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if _element_object(elem):
                raise errors.invalid_argument(f"Expecting value/list but got object at item {i} of input list")
            try:
                columns_add(columns, shapes, names[0], elem, infos)
            except errors.ServingError as exc:
                raise errors.invalid_argument(
                    f"Failed to process element: {i} of 'instances' list. Error: {exc.to_string()}"
                ) from exc
    return {n: np.stack(c) for n, c in columns.items() if c}


def columns_add(columns: dict[str, list[np.ndarray]], shapes: dict[str, list[int]], name: str, value: Any,
                infos: dict[str, int]) -> None:
    """``AddInstanceItem``: convert one instance value and check it matches the earlier ones."""
    if name not in infos:
        raise errors.invalid_argument(f"JSON object: does not have named input: {name}")
    arr = to_array(value, infos[name])
    dims = list(arr.shape)
    if name not in shapes:
        shapes[name] = dims
    else:
        want = shapes[name]
        if int(np.prod(want)) != int(np.prod(dims)):
            raise errors.invalid_argument(f"Expecting tensor size: {int(np.prod(want))} but got: {int(np.prod(dims))}")
        if want != dims:
            raise errors.invalid_argument(f"Expecting shape {_shape_str(want)} but got: {_shape_str(dims)}")
    columns[name].append(arr)


def _inputs(val: Any, infos: dict[str, int]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInputsMap``."""
    if not isinstance(val, dict) or is_b64_object(val):
        if len(infos) > 1:
            raise errors.invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        name = next(iter(infos))
        return {name: to_array(val, infos[name])}
    out: dict[str, np.ndarray] = {}
    for name in sorted(infos):
        if name not in val:
            raise errors.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_array(val[name], infos[name])
    return out


def predict_inputs(doc: dict[str, Any], infos: dict[str, int]) -> tuple[dict[str, np.ndarray], str]:
    """Inputs of a predict body and its format (ROW or COLUMNAR). ``infos``: alias -> DataType enum."""
    if not infos:
        signame = doc.get("signature_name") or "DEFAULT"
        raise errors.invalid_argument(f"Failed to get input map for signature: {signame}")
    if "instances" in doc:
        if "inputs" in doc:
            raise errors.invalid_argument(
                f"JSON Value: {value_to_string(doc)} Not formatted correctly expecting only one of 'inputs' or "
                "'instances' keys to exist "
            )
        items = _nonempty_list(
            doc, "instances", "Excepting 'instances' to be an list/array", "No values in 'instances' array"
        )
        return _instances(items, infos), ROW
    if "inputs" in doc:
        return _inputs(doc["inputs"], infos), COLUMNAR
    raise errors.invalid_argument("Missing 'inputs' or 'instances' key")


def _nonempty_list(doc: dict[str, Any], key: str, not_a_list: str, empty: str) -> list[Any]:
    """``doc[key]`` if it is a non-empty JSON array, else TF Serving's error with the document echoed."""
    items = doc[key]
    if not isinstance(items, list):
        raise errors.invalid_argument(f"JSON Value: {value_to_string(doc)} {not_a_list}")
    if not items:
        raise errors.invalid_argument(f"JSON Value: {value_to_string(doc)} {empty}")
    return items


def _feature(name: str, values: list[Any]) -> Any:
    """``AddValueToFeature`` for a list of JSON values -> ``tf.train.Feature``."""
    from tensorflow.core.example import feature_pb2

    from .json_tensor import decode_b64

    f = feature_pb2.Feature()
    kind = ""

    def want(k: str) -> None:
        nonlocal kind
        if kind and kind != k:
            raise errors.invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = k

    for v in values:
        if v is None or isinstance(v, list) or (isinstance(v, dict) and not is_b64_object(v)):
            raise errors.invalid_argument(f"Feature: {name} has element with unexpected JSON type: {json_type(v)}")
        if isinstance(v, bool):
            want("int64")
            f.int64_list.value.append(int(v))
        elif isinstance(v, dict):
            want("bytes")
            f.bytes_list.value.append(decode_b64(v))
        elif isinstance(v, str):
            want("bytes")
            f.bytes_list.value.append(v.encode("utf-8"))
        elif isinstance(v, float):
            want("float")
            f.float_list.value.append(v)
        else:
            want("int64")
            if v >= 2**63:
                raise errors.invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported.")
            f.int64_list.value.append(v)
    return f


def _example(val: Any, example: Any) -> None:
    if not isinstance(val, dict):
        raise errors.invalid_argument(f"Example must be JSON object but got JSON {json_type(val)}")
    for name, content in val.items():
        example.features.feature[name].CopyFrom(_feature(name, content if isinstance(content, list) else [content]))


def examples_input(doc: dict[str, Any]) -> Any:
    """``FillClassifyRegressRequestFromJson``: build a ``tensorflow.serving.Input`` proto."""
    from tensorflow_serving.apis import input_pb2

    inp = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], inp.example_list_with_context.context)
    if "examples" not in doc:
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    items = _nonempty_list(
        doc, "examples", "Expecting 'examples' value to be an list/array", "'examples' value is an empty array"
    )
    target = inp.example_list_with_context.examples if has_context else inp.example_list.examples
    for item in items:
        _example(item, target.add())
    return inp

