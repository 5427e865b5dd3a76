"""Builders of broken TensorFlow artifacts (one per checker code), each a tiny y=2x-style model.

Each builder writes the version folder into ``out_dir`` exactly as the user in the matching report
did (artifact-bugs.md), so the checker and the real model server see the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sandbox.export import export_tensorflow
from sandbox.testing.reference import saved_model_reference
from sandbox.testing.scenario import Built
from sandbox.testing.scratch import private_keras_home

private_keras_home()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _doubler(tf: Any, *, with_variable: bool = False, shape: tuple[int | None, ...] = (None, 1)) -> Any:
    """A tf.Module computing y = w*x (w = 2.0, a tf.Variable when ``with_variable``)."""

    class Doubler(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(2.0) if with_variable else None

        @tf.function(input_signature=[tf.TensorSpec(list(shape), tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": x * (self.w if self.w is not None else 2.0)}

    return Doubler()


def _module_export(out_dir: Path, module: Any, signature_key: str = "serving_default") -> Path:
    sig = module.serve.get_concrete_function()
    return export_tensorflow(module, out_dir, signatures={signature_key: sig})


# --- tf.no-serve-tag / tf.unparseable ------------------------------------------------------------
def tf_train_tag_only(out_dir: Path) -> Built:
    """TF1 SavedModelBuilder.add_meta_graph_and_variables(sess, ["train"]) (serving#937)."""
    tf = _tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 1], name="x")
        y = tf.multiply(x, 2.0, name="y")
        with v1.Session(graph=graph) as sess:
            builder = v1.saved_model.Builder(str(out_dir))
            sig = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(sess, ["train"], signature_def_map={"serving_default": sig})
            builder.save()
    return Built(out_dir)


def tf_frozen_graphdef(out_dir: Path) -> Built:
    """A frozen GraphDef (convert_variables_to_constants) renamed to 1/saved_model.pb (tensorflow/models#3530)."""
    tf = _tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 1], name="x")
        w = v1.Variable(2.0, name="w")
        tf.multiply(x, w, name="y")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["y"])
    # TF1's freeze_graph wrote no (empty) function library; TF2's as_graph_def() always adds one, and that
    # field (number 2) then decodes as an empty SavedModel.meta_graphs entry: see tf_frozen_graphdef_tf2.
    frozen.ClearField("library")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "saved_model.pb").write_bytes(frozen.SerializeToString())
    return Built(out_dir)


# --- tf.no-serving-default -----------------------------------------------------------------------
def tf_custom_signature_key(out_dir: Path) -> Built:
    """Signature exported under 'predict' instead of 'serving_default' (tensorpack#1457)."""
    tf = _tf()
    _module_export(out_dir, _doubler(tf), signature_key="predict")
    return Built(out_dir)


# --- tf.variables-missing ------------------------------------------------------------------------
def tf_variables_emptied(out_dir: Path) -> Built:
    """y=w*x exported, then variables/variables.* deleted (partial copy; serving#1086)."""
    tf = _tf()
    _module_export(out_dir, _doubler(tf, with_variable=True))
    for f in (out_dir / "variables").iterdir():
        f.unlink()  # the empty variables/ folder does not reach S3 (no objects under it)
    return Built(out_dir, saved_model_reference(out_dir))


# --- tf.op-unsupported ---------------------------------------------------------------------------
def tf_py_function(out_dir: Path) -> Built:
    """A serving function calling tf.py_function: an EagerPyFunc op (tensorflow/serving#896)."""
    tf = _tf()

    class PyFn(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            y = tf.py_function(lambda t: t * 2.0, [x], tf.float32)
            y.set_shape(x.shape)
            return {"y": y}

    _module_export(out_dir, PyFn())
    return Built(out_dir)


def tf_unknown_op(out_dir: Path) -> Built:
    """y=2x whose Mul NodeDef is renamed to 'FooOpV99' (an op from a newer TF; serving#924)."""
    tf = _tf()
    from tensorflow.core.protobuf import saved_model_pb2

    _module_export(out_dir, _doubler(tf))
    sm = saved_model_pb2.SavedModel()
    pb = out_dir / "saved_model.pb"
    sm.ParseFromString(pb.read_bytes())
    renamed = 0
    for mg in sm.meta_graphs:
        for fn in mg.graph_def.library.function:
            for node in fn.node_def:
                if node.op == "Mul":
                    node.op = "FooOpV99"
                    renamed += 1
    assert renamed, "no Mul node to rename"
    pb.write_bytes(sm.SerializeToString())
    return Built(out_dir)


# --- tf.keras-file / tf.checkpoint-only ----------------------------------------------------------
def tf_dot_keras(out_dir: Path) -> Built:
    """Keras 3 model.save('model.keras') uploaded instead of model.export (kserve#4695)."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir / "model.keras"))
    return Built(out_dir)


def tf_checkpoint(out_dir: Path) -> Built:
    """tf.train.Checkpoint(...).save() files uploaded instead of a SavedModel (serving#266, kserve#563)."""
    tf = _tf()
    out_dir.mkdir(parents=True, exist_ok=True)
    tf.train.Checkpoint(v=tf.Variable(1.0)).save(str(out_dir / "ckpt"))
    return Built(out_dir)


# --- layout.nested / layout.no-model-file --------------------------------------------------------
def tf_nested_version_dir(out_dir: Path) -> Built:
    """The TF-Serving-style base folder uploaded: the SavedModel sits in 1/ under the version folder."""
    tf = _tf()
    _module_export(out_dir / "1", _doubler(tf))
    return Built(out_dir)


def tf_renamed_pb(out_dir: Path) -> Built:
    """A SavedModel whose saved_model.pb was renamed to model.pb (Vertex 'supported file names')."""
    tf = _tf()
    _module_export(out_dir, _doubler(tf))
    (out_dir / "saved_model.pb").rename(out_dir / "model.pb")
    return Built(out_dir)


def tf_project_folder(out_dir: Path) -> Built:
    """A training project uploaded instead of its export: run logs nested deeper than the checker looks, no model."""
    logs = out_dir.joinpath("runs", "exp1", "seed0", "tensorboard", "plugins", "profile", "2024_01_01", "host", "trace")
    logs.mkdir(parents=True)
    (logs / "events.txt").write_text("step 1 loss 0.5\n")
    (out_dir / "train.py").write_text("print('training')\n")
    return Built(out_dir)


# --- tf.asset-missing ----------------------------------------------------------------------------
def tf_vocab_asset_deleted(out_dir: Path) -> Built:
    """A lookup table over assets/vocab.txt, uploaded without assets/ (tensorflow/tensorflow#32770)."""
    tf = _tf()
    vocab = Path(tempfile.mkdtemp(prefix="vocab-")) / "vocab.txt"
    vocab.write_text("a\nb\nc\n")

    class Lookup(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            init = tf.lookup.TextFileInitializer(
                str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="word")])
        def serve(self, word: Any) -> Any:
            return {"id": self.table.lookup(word)}

    _module_export(out_dir, Lookup())
    shutil.rmtree(vocab.parent, ignore_errors=True)
    shutil.rmtree(out_dir / "assets")
    return Built(out_dir)


# --- predict-time failures (the model loads) -------------------------------------------------------
def tf_keras_untracked_in_module(out_dir: Path) -> Built:
    """A Keras 3 model held by a tf.Module and saved with signatures= (tensorflow#72963, serving#2250)."""
    tf = _tf()
    import keras

    class Wrapper(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": self.m(x)}

    _module_export(out_dir, Wrapper())
    return Built(out_dir)


def tf_keras3_saved_with_tf_saved_model_save(out_dir: Path) -> Built:
    """tf.saved_model.save(keras3_model, path, signatures=...) instead of model.export() (keras#19274, serving#2226).

    The model is the root object, yet the signature reads variable handles other than the ones the restore
    op fills: Python's tf.saved_model.load serves it, the C++ session loader of TF Serving does not.
    """
    tf = _tf()
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="y")], name="net")
    serve = tf.function(lambda x: {"y": model(x)}, input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    tf.saved_model.save(model, str(out_dir), signatures={"serving_default": serve.get_concrete_function()})
    return Built(out_dir)


def tf_input_without_batch_dim(out_dir: Path) -> Built:
    """A signature input of shape [4] instead of [None, 4] (tensorflow/serving#2104, #1855)."""
    tf = _tf()

    class OneExample(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.ones([4, 2]))

        @tf.function(input_signature=[tf.TensorSpec([4], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": tf.matmul(tf.reshape(x, [1, 4]), self.w)}

    _module_export(out_dir, OneExample())
    return Built(out_dir, saved_model_reference(out_dir))


def tf_decodes_base64_again(out_dir: Path) -> Built:
    """A DT_STRING input the graph base64-decodes itself (mdietrichstein/tensorflow-open_nsfw#1)."""
    tf = _tf()

    class Bytes(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes: Any) -> Any:
            return {"n": tf.strings.length(tf.io.decode_base64(image_bytes))}

    _module_export(out_dir, Bytes())
    return Built(out_dir, saved_model_reference(out_dir))


# --- layout.lfs-pointer / tf.warmup-invalid --------------------------------------------------------
def tf_git_lfs_pointers(out_dir: Path) -> Built:
    """A SavedModel cloned from a Git LFS repo without `git lfs pull`: every file is a pointer stub."""
    tf = _tf()
    _module_export(out_dir, _doubler(tf, with_variable=True))
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        size = path.stat().st_size
        oid = hashlib.sha256(path.read_bytes()).hexdigest()
        path.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n")
    return Built(out_dir)


def tf_warmup_not_tfrecord(out_dir: Path) -> Built:
    """assets.extra/tf_serving_warmup_requests written as JSON lines instead of a TFRecord of PredictionLog."""
    tf = _tf()
    _module_export(out_dir, _doubler(tf))
    extra = out_dir / "assets.extra"
    extra.mkdir()
    (extra / "tf_serving_warmup_requests").write_text('{"instances": [[1.0]]}\n')
    return Built(out_dir)


# --- layout.image-mismatch ---------------------------------------------------------------------------
def tf_doubler_ok(out_dir: Path) -> Built:
    """A good y=2x SavedModel (deployed on the wrong image by the scenario)."""
    _module_export(out_dir, _doubler(_tf()))
    return Built(out_dir)


# --- tf.parsing-signature ------------------------------------------------------------------------------
def tf_parses_tf_examples(out_dir: Path) -> Built:
    """An Estimator-style export: the only input is serialized tf.Example protos (tensorflow#21234, serving#1017)."""
    tf = _tf()

    class Parsing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples: Any) -> Any:
            features = tf.io.parse_example(examples, {"age": tf.io.FixedLenFeature([1], tf.float32)})
            return {"y": features["age"] * 2.0}

    _module_export(out_dir, Parsing())
    return Built(out_dir)


# --- tf.training-mode ----------------------------------------------------------------------------------
def tf_keras_served_in_training_mode(out_dir: Path) -> Built:
    """x -> BatchNormalization -> Dense(w=2, b=0.5), exported with an endpoint calling model(x, training=True).

    In training mode the batch norm uses the request's own batch statistics: a lone instance is normalized
    to 0, so every single-instance request answers the Dense bias (0.5) instead of about 2x + 0.5.
    """
    tf = _tf()
    import keras
    import numpy as np

    x = keras.Input((1,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="y")(keras.layers.BatchNormalization()(x)))
    model.get_layer("y").set_weights([np.array([[2.0]], np.float32), np.array([0.5], np.float32)])
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda x: {"y": model(x, training=True)},
        input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")],
    )
    archive.write_out(str(out_dir), verbose=False)
    return Built(out_dir)


# --- tf.generated-names --------------------------------------------------------------------------------
def tf_keras3_two_outputs(out_dir: Path) -> Built:
    """Keras 3 model with outputs named 'score' and 'double', exported with model.export() (keras#19458).

    The input keeps its name (x); the outputs become output_0 and output_1, so a client reading
    predictions[i]["score"] gets a KeyError.
    """
    import keras
    import numpy as np

    x = keras.Input((2,), name="x")
    score = keras.layers.Dense(1, name="score")
    double = keras.layers.Dense(2, name="double")
    model = keras.Model(x, [score(x), double(x)])
    score.set_weights([np.ones((2, 1), np.float32), np.zeros(1, np.float32)])
    double.set_weights([2.0 * np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
    export_tensorflow(model, out_dir)
    return Built(out_dir)
