"""Run a signature of a loaded servable: Predict, Classify and Regress semantics of TF Serving.

Both transports call these functions with plain numpy arrays / protos; messages follow
``predict_util.cc``, ``tensorflow/cc/saved_model/util.cc``, ``classifier.cc`` and ``regressor.cc``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import errors
from .json_values import dtype_string
from .loader import Servable

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def signature_or_error(servable: Servable, name: str) -> Any:
    """The SignatureDef for Predict over gRPC (FAILED_PRECONDITION when absent, as predict_util.cc)."""
    sig = servable.signatures.get(name or DEFAULT_SIGNATURE)
    if sig is None:
        raise errors.failed_precondition(f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found.')
    return sig


def rest_input_info(servable: Servable, name: str) -> Any:
    """The SignatureDef for a REST request (INVALID_ARGUMENT when absent, as http_rest_api_handler.cc)."""
    signame = name or DEFAULT_SIGNATURE
    sig = servable.signatures.get(signame)
    if sig is None:
        raise errors.invalid_argument(f'Serving signature name: "{signame}" not found in signature def')
    return sig


def _check_inputs(sig: Any, inputs: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    req, want = set(inputs), set(sig.inputs)
    if len(req) > len(want) or (len(req) < len(want) and not sig.defaults):
        raise errors.invalid_argument(
            f"input size does not match signature: {len(req)}!={len(want)} len({{{','.join(sorted(req))}}}) != "
            f"len({{{','.join(sorted(want))}}}). Sent extra: {{{','.join(sorted(req - want))}}}. "
            f"Missing but required: {{{','.join(sorted(want - req))}}}."
        )
    feeds: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    for alias in sorted(sig.inputs):
        feed_name = sig.inputs[alias].name
        if alias in inputs:
            feeds.append((feed_name, inputs[alias]))
            seen.add(alias)
        elif alias in sig.defaults:
            import tensorflow as tf

            feeds.append((feed_name, tf.make_ndarray(sig.defaults[alias])))
        else:
            raise errors.invalid_argument(
                f"Signature input alias: {alias}(feed name: {feed_name}) not found in request and no default value "
                f"provided. Inputs expected to be in the request {{{','.join(sorted(req))}}}, or default input "
                f"alias set: {','.join(sorted(sig.defaults))}"
            )
    if inputs and len(seen) != len(inputs):
        raise errors.invalid_argument(
            f"Inputs contains invalid name. Used request inputs: {','.join(sorted(seen))}, "
            f"request input: {','.join(sorted(req))}"
        )
    return feeds


@functools.lru_cache(maxsize=64)
def _dtype_enum(np_dtype: np.dtype) -> int:
    from tensorflow.python.framework import dtypes

    return int(dtypes.as_dtype(object if np_dtype.kind in "OSU" else np_dtype).as_datatype_enum)


def _check_dtypes(sig: Any, feeds: Sequence[tuple[str, np.ndarray]]) -> None:
    """Refuse a tensor whose dtype is not the signature's, as ``DirectSession::Run``'s call frame does.

    JSON requests are decoded in the signature's dtype; a gRPC TensorProto keeps its own, and TF Serving
    does not convert it. The session numbers its feeds in sorted tensor-name order.
    """
    expected = {info.name: info.dtype for info in sig.inputs.values()}
    for index, (name, array) in enumerate(sorted(feeds, key=lambda feed: feed[0])):
        want, got = expected.get(name), _dtype_enum(array.dtype)
        if want is not None and got != want:
            raise errors.invalid_argument(
                f"Expects arg[{index}] to be {dtype_string(want)} but {dtype_string(got)} is provided"
            )


def run_signature(
    servable: Servable, sig: Any, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Validate inputs against ``sig``, run it, and return outputs keyed by alias."""
    feeds = _check_inputs(sig, inputs)
    aliases: list[str] = []
    for alias in output_filter:
        if alias not in sig.outputs:
            raise errors.invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{{{','.join(sorted(sig.outputs))}}}."
            )
        if alias in aliases:
            raise errors.invalid_argument(f"duplicate output tensor alias: {alias}")
        aliases.append(alias)
    if not aliases:
        aliases = sorted(sig.outputs)
    _check_dtypes(sig, feeds)
    try:
        values = servable.run(feeds, [sig.outputs[a].name for a in aliases])
    except Exception as exc:
        raise errors.from_exception(exc) from exc
    return dict(zip(aliases, values, strict=True))


def serialize_examples(input_proto: Any) -> np.ndarray:
    """``tensorflow.serving.Input`` -> 1-D object array of serialized ``tf.Example`` (context merged in)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = list(input_proto.example_list.examples)
        out = [e.SerializeToString() for e in examples]
    elif kind == "example_list_with_context":
        ctx = input_proto.example_list_with_context.context
        out = []
        for e in input_proto.example_list_with_context.examples:
            merged = type(e)()
            merged.CopyFrom(ctx)
            merged.MergeFrom(e)
            out.append(merged.SerializeToString())
    else:
        out = []
    if not out:
        raise errors.invalid_argument("Input is empty.")
    return np.array(out, dtype=object)


def _method_signature(servable: Servable, name: str, method: str, kind: str) -> Any:
    signame = name or DEFAULT_SIGNATURE
    sig = servable.signatures.get(signame)
    if sig is None:
        raise errors.invalid_argument(f"No signature was found with the name: {signame}")
    if sig.method_name != method:
        raise errors.invalid_argument(
            f"Expected {kind} signature method_name to be {method}. Was: {sig.method_name}"
        )
    if len(sig.inputs) != 1:
        raise errors.invalid_argument("Expected one input Tensor.")
    return sig


def classify(servable: Servable, signature_name: str, input_proto: Any) -> Any:
    """Run a classification signature; return a ``ClassificationResult`` proto."""
    from tensorflow_serving.apis import classification_pb2

    sig = _method_signature(servable, signature_name, CLASSIFY_METHOD, "classification")
    if "classes" not in sig.outputs and "scores" not in sig.outputs:
        raise errors.invalid_argument(
            f"Expected classification signature outputs to contain classes or scores. Was: {sorted(sig.outputs)}"
        )
    examples = serialize_examples(input_proto)
    out = run_signature(servable, sig, {next(iter(sig.inputs)): examples},
                        [k for k in ("classes", "scores") if k in sig.outputs])
    batch = len(examples)
    classes = out["classes"].reshape(batch, -1) if "classes" in out else None
    scores = out["scores"].reshape(batch, -1) if "scores" in out else None
    width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
    result = classification_pb2.ClassificationResult()
    for i in range(batch):
        c = result.classifications.add()
        for j in range(width):
            cls = c.classes.add()
            if classes is not None:
                label = classes[i, j]
                cls.label = label.decode() if isinstance(label, bytes) else str(label)
            if scores is not None:
                cls.score = float(scores[i, j])
    return result


def regress(servable: Servable, signature_name: str, input_proto: Any) -> Any:
    """Run a regression signature; return a ``RegressionResult`` proto."""
    from tensorflow_serving.apis import regression_pb2

    sig = _method_signature(servable, signature_name, REGRESS_METHOD, "regression")
    if "outputs" not in sig.outputs:
        raise errors.invalid_argument("No regression outputs found in SignatureDef")
    examples = serialize_examples(input_proto)
    out = run_signature(servable, sig, {next(iter(sig.inputs)): examples}, ["outputs"])["outputs"]
    if out.ndim > 2 or (out.ndim == 2 and out.shape[1] != 1) or out.ndim == 0:
        raise errors.invalid_argument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(out.shape)}"
        )
    result = regression_pb2.RegressionResult()
    for v in out.reshape(-1):
        result.regressions.add().value = float(v)
    return result
