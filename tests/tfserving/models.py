"""Tiny SavedModels built at test time, one function per artifact shape the server must handle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2


class Dense(tf.Module):
    """y = x @ [[1],[2]] + 0.5 with x float32 [None, 2]."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.w = tf.Variable([[1.0 * scale], [2.0 * scale]])
        self.b = tf.Variable([0.5])

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.matmul(x, self.w) + self.b}


class Multi(tf.Module):
    """Two inputs (a: float [None,2], tag: string [None]) and three outputs."""

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="a"),
                                  tf.TensorSpec([None], tf.string, name="tag")])
    def serve(self, a: tf.Tensor, tag: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scaled": a * 2.0, "echo": tag, "echo_bytes": tag}


class Typed(tf.Module):
    """One signature per dtype so requests can pick them with signature_name."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="x")])
    def int32(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x + 1}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x")])
    def int64(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x + 1}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name="x")])
    def double(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * 2}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.bool, name="x")])
    def boolean(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.logical_not(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def f32(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x / 3.0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="x")])
    def length(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"len": tf.strings.length(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float16, name="x")])
    def half(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def scalar_out(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"total": tf.reduce_sum(x), "y": x}


class Conv(tf.Module):
    """A small conv net: 28x28x1 images -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.k = tf.Variable(rng.normal(size=(3, 3, 1, 8)).astype(np.float32))
        self.w = tf.Variable(rng.normal(size=(8, 10)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        h = tf.nn.relu(tf.nn.conv2d(image, self.k, 1, "SAME"))
        h = tf.reduce_mean(h, axis=[1, 2])
        return {"logits": tf.matmul(h, self.w)}


def save_module(module: tf.Module, path: Path, **signatures: object) -> Path:
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


def dense(path: Path, scale: float = 1.0) -> Path:
    m = Dense(scale)
    return save_module(m, path, serving_default=m.serve)


def conv(path: Path) -> Path:
    m = Conv()
    return save_module(m, path, serving_default=m.serve)


def multi(path: Path) -> Path:
    m = Multi()
    return save_module(m, path, serving_default=m.serve)


def typed(path: Path) -> Path:
    m = Typed()
    return save_module(m, path, serving_default=m.f32, int32=m.int32, int64=m.int64, double=m.double,
                       boolean=m.boolean, length=m.length, scalar_out=m.scalar_out, half=m.half)


def tf1_examples(path: Path, tags: tuple[str, ...] = ("serve",)) -> Path:
    """A TF1 graph with classify (serving_default), regress and predict signatures over tf.Example."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        ex = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        feats = tf.io.parse_example(ex, {"f": tf.io.FixedLenFeature([1], tf.float32)})
        p = tf.sigmoid(feats["f"])
        scores = tf.concat([1.0 - p, p], axis=1)
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(ex)[0], 1])
        sm = tf.compat.v1.saved_model
        builder = sm.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, list(tags), signature_def_map={
            "serving_default": sm.classification_signature_def(ex, classes, scores),
            "regress": sm.regression_signature_def(ex, feats["f"] * 2.0),
        })
        builder.save()
    return path


def with_bad_op(src: Path, dst: Path, op: str = "MatMul", new_op: str = "FooOpV99") -> Path:
    """Copy a SavedModel and rename one op inside its functions (version-skew reproduction)."""
    shutil.copytree(src, dst)
    sm = saved_model_pb2.SavedModel()
    pb = dst / "saved_model.pb"
    sm.ParseFromString(pb.read_bytes())
    for f in sm.meta_graphs[0].graph_def.library.function:
        for n in f.node_def:
            if n.op == op:
                n.op = new_op
    pb.write_bytes(sm.SerializeToString())
    return dst


def write_warmup(version_dir: Path, inputs: dict[str, np.ndarray], signature: str = "serving_default") -> Path:
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = "warm"
    req.model_spec.signature_name = signature
    for k, v in inputs.items():
        req.inputs[k].CopyFrom(tf.make_tensor_proto(v))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
    out = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    os.makedirs(out.parent, exist_ok=True)
    with tf.io.TFRecordWriter(str(out)) as w:
        w.write(log.SerializeToString())
    return out


def build_zoo(root: Path) -> dict[str, Path]:
    """Every model the conformance suite serves, keyed by model name -> base path."""
    zoo = {
        "dense": root / "dense", "multi": root / "multi", "typed": root / "typed", "examples": root / "examples",
        "nodefault": root / "nodefault", "notag": root / "notag", "flat": root / "flat", "badop": root / "badop",
        "versions": root / "versions", "warm": root / "warm", "coldwarm": root / "coldwarm",
        "nopb": root / "nopb", "novars": root / "novars", "pyfunc": root / "pyfunc",
        "missingbase": root / "does-not-exist",
    }
    dense(zoo["dense"] / "1")
    multi(zoo["multi"] / "1")
    typed(zoo["typed"] / "1")
    tf1_examples(zoo["examples"] / "1")
    m = Dense()
    save_module(m, zoo["nodefault"] / "1", predict=m.serve)
    tf1_examples(zoo["notag"] / "1", tags=("train",))
    dense(zoo["flat"])  # no numeric version folder
    with_bad_op(zoo["dense"] / "1", zoo["badop"] / "1")
    dense(zoo["versions"] / "1", scale=1.0)
    dense(zoo["versions"] / "2", scale=10.0)
    dense(zoo["warm"] / "1")
    write_warmup(zoo["warm"] / "1", {"x": np.ones((1, 2), np.float32)})
    dense(zoo["coldwarm"] / "1")
    write_warmup(zoo["coldwarm"] / "1", {"nope": np.ones((1, 2), np.float32)})
    os.makedirs(zoo["nopb"] / "1" / "variables")
    (zoo["nopb"] / "1" / "model.keras").write_bytes(b"PK\x03\x04")
    dense(zoo["novars"] / "1")
    for f in (zoo["novars"] / "1" / "variables").iterdir():
        f.unlink()  # an upload caught half-way: saved_model.pb without its variables
    py_function(zoo["pyfunc"] / "1")
    return zoo


def py_function(path: Path) -> Path:
    """A signature whose body is a Python callback (EagerPyFunc): loads in Python TF, not in the model server."""

    class PyFn(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.py_function(lambda v: v * 2, [x], tf.float32)}

    m = PyFn()
    return save_module(m, path, serving_default=m.serve)
