"""Build the tiny TensorFlow artifacts the checker tests use (run once per session in a subprocess).

Usage: python build_tf_models.py OUT_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

OUT = Path(sys.argv[1])
F4 = tf.TensorSpec([None, 4], tf.float32)


class Linear(tf.Module):
    def __init__(self) -> None:
        self.w = tf.Variable([[3.0], [1.0], [2.0], [1.0]])

    @tf.function(input_signature=[F4])
    def serve(self, x):
        return {"y": tf.matmul(x, self.w)}

    @tf.function(input_signature=[F4])
    def serve_pyfunc(self, x):
        y = tf.py_function(lambda t: t * 2.0, [x], tf.float32)
        return {"y": tf.reshape(y, [-1, 4])}


def save(module, name, signatures):
    tf.saved_model.save(module, str(OUT / name), signatures=signatures)


def tf2_models() -> None:
    m = Linear()
    save(m, "good", {"serving_default": m.serve})
    save(m, "custom_key", {"predict": m.serve})
    save(m, "pyfunc", {"serving_default": m.serve_pyfunc})

    class TupleOutputs(tf.Module):
        @tf.function(input_signature=[F4])
        def serve(self, x):
            return x, 2.0 * x  # unnamed outputs: output_0, output_1

    t = TupleOutputs()
    save(t, "tuple_outputs", {"serving_default": t.serve})

    vocab = OUT / "vocab.txt"
    vocab.write_text("a\nb\nc\n")

    class Vocab(tf.Module):
        def __init__(self) -> None:
            init = tf.lookup.TextFileInitializer(
                str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
            )
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, s):
            return {"ids": self.table.lookup(s)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve_b64(self, s):
            return {"n": tf.strings.length(tf.io.decode_base64(s))}

    v = Vocab()
    save(v, "vocab", {"serving_default": v.serve})
    save(v, "b64", {"serving_default": v.serve_b64})

    class Shapes(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([4], tf.float32)])
        def nobatch(self, x):
            return {"total": tf.reduce_sum(x)}

        @tf.function(input_signature=[tf.TensorSpec([None, 800, 800, 3], tf.float32)])
        def big(self, x):
            return {"mean": tf.reduce_mean(x, axis=[1, 2, 3])}

    s = Shapes()
    save(s, "nobatch", {"serving_default": s.nobatch})
    save(s, "big", {"serving_default": s.big})

    class Examples(tf.Module):
        """An Estimator-style parsing signature, and the feature-dict signature JSON clients can call."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def parsing(self, examples):
            features = tf.io.parse_example(examples, {"age": tf.io.FixedLenFeature([1], tf.float32)})
            return {"y": features["age"] * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="age")])
        def features(self, age):
            return {"y": age * 2.0}

    e = Examples()
    save(e, "parse_example", {"serving_default": e.parsing})
    save(e, "feature_dict", {"serving_default": e.features})

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(m.serve.get_concrete_function())
    (OUT / "frozen").mkdir()
    (OUT / "frozen" / "saved_model.pb").write_bytes(frozen.graph.as_graph_def().SerializeToString())

    ckpt = tf.train.Checkpoint(v=tf.Variable(1.0))
    ckpt.save(str(OUT / "ckpt" / "ckpt"))


def tf1_models() -> None:
    v1 = tf.compat.v1
    for name, tags, absolute in (("train_tag", ["train"], False), ("abs_asset", ["serve"], True)):
        graph = tf.Graph()
        with graph.as_default(), v1.Session(graph=graph) as sess:
            x = v1.placeholder(tf.float32, [None, 1], name="x")
            w = v1.get_variable("w", initializer=tf.constant([[2.0]]))
            y = tf.matmul(x, w, name="y")
            main_op = None
            if absolute:
                init = tf.lookup.TextFileInitializer(
                    str(OUT / "vocab.txt"),
                    tf.string,
                    tf.lookup.TextFileIndex.WHOLE_LINE,
                    tf.int64,
                    tf.lookup.TextFileIndex.LINE_NUMBER,
                )
                table = tf.lookup.StaticHashTable(init, -1)
                y = tf.cast(table.size(), tf.float32) * y
                main_op = v1.tables_initializer()
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(OUT / name))
            sig = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                sess, tags, signature_def_map={"serving_default": sig}, main_op=main_op
            )
            builder.save()


def keras_models() -> None:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.export(str(OUT / "keras_export"), verbose=False)
    (OUT / "keras_file").mkdir()
    model.save(str(OUT / "keras_file" / "model.keras"))

    class Holder(tf.Module):
        """Keras 3 model as a plain attribute: its variables are captured by the signature but never saved."""

        def __init__(self, tracked: bool) -> None:
            self.m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            if tracked:
                self.weights = [v.value for v in self.m.weights]  # the underlying tf.Variables, tracked

        @tf.function(input_signature=[F4])
        def serve(self, x):
            return {"y": self.m(x)}

    for name, tracked in (("keras_in_module_tracked", True), ("keras_in_module_untracked", False)):
        holder = Holder(tracked)
        save(holder, name, {"serving_default": holder.serve})


def training_mode_models() -> None:
    """Dropout + BatchNormalization served with training=True (bad) and training=False (good), Keras 3 and TF1."""
    import keras

    class Served(tf.Module):
        def __init__(self, training: bool) -> None:
            x = keras.Input((4,))
            h = keras.layers.Dropout(0.5)(keras.layers.BatchNormalization()(keras.layers.Dense(8)(x)))
            self.m = keras.Model(x, keras.layers.Dense(1)(h))
            self.training = training
            self.state = [v.value for v in self.m.variables]
            self.state += [layer.seed_generator.state.value for layer in self.m.layers if hasattr(layer, "seed_generator")]

        @tf.function(input_signature=[F4])
        def serve(self, x):
            return {"y": self.m(x, training=self.training)}

    for name, training in (("keras_training", True), ("keras_inference", False)):
        served = Served(training)
        save(served, name, {"serving_default": served.serve})

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        x = v1.placeholder(tf.float32, [None, 2, 2, 3], name="x")
        h, _, _ = v1.nn.fused_batch_norm(x, tf.ones([3]), tf.zeros([3]), is_training=True)
        y = tf.reduce_mean(tf.nn.dropout(h, rate=0.5), axis=[1, 2, 3], name="y")
        builder = v1.saved_model.Builder(str(OUT / "tf1_training"))
        sig = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
        builder.save()


def warmup() -> None:
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="model"))
    req.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0, 2.0, 3.0, 4.0]]))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
    with tf.io.TFRecordWriter(str(OUT / "warmup_good.tfrecord")) as w:
        w.write(log.SerializeToString())
    with tf.io.TFRecordWriter(str(OUT / "warmup_bad.tfrecord")) as w:
        w.write(b"\x10\x01 just some bytes")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    tf2_models()
    tf1_models()
    keras_models()
    training_mode_models()
    warmup()
    (OUT / "DONE").write_text("ok")
