"""Replay ``assets.extra/tf_serving_warmup_requests`` (TFRecord of ``PredictionLog``) at load time."""

from __future__ import annotations

import os
import time

from . import errors, runner, tflog
from .loader import Servable

_WHERE = "tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc"
MAX_RECORDS = 1000


def warmup_path(version_dir: str) -> str:
    return os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")


def replay(servable: Servable) -> int:
    """Run every warmup record against ``servable``; return the count. A failing record fails the load."""
    path = warmup_path(servable.path)
    if not os.path.exists(path):
        tflog.info(f"{_WHERE}:83", f"No warmup data file found at {path}")
        return 0
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    tflog.info(f"{_WHERE}:106", f"Starting to read warmup data for model at {path} with model-warmup-options ")
    start = time.monotonic()
    count = 0
    try:
        records = list(tf.compat.v1.io.tf_record_iterator(path))
    except Exception as exc:
        raise errors.from_exception(exc) from exc
    for raw in records:
        count += 1
        if count > MAX_RECORDS:
            raise errors.invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            req = log.predict_log.request
            sig = runner.signature_or_error(servable, req.model_spec.signature_name)
            inputs = {k: tf.make_ndarray(v) for k, v in req.inputs.items()}
            runner.run_signature(servable, sig, inputs, list(req.output_filter))
        elif kind == "classify_log":
            req = log.classify_log.request
            runner.classify(servable, req.model_spec.signature_name, req.input)
        elif kind == "regress_log":
            req = log.regress_log.request
            runner.regress(servable, req.model_spec.signature_name, req.input)
        else:
            raise errors.unimplemented(f"Unsupported log_type for warmup: {kind}")
    took = int((time.monotonic() - start) * 1e6)
    tflog.info(
        f"{_WHERE}:158",
        f"Finished reading warmup data for model at {path}. Number of warmup records read: {count}. "
        f"Elapsed time (microseconds): {took}.",
    )
    return count
