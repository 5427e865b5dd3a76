"""One runtime per TF version: a model using an op added after TF 2.14 serves on 2.18 and fails on 2.14.

``DatasetFingerprint`` (``tf.data.Dataset.fingerprint()``) is registered in TF 2.18 and not in 2.14
(found by diffing the two op registries). The first run creates the 2.14 virtualenv (~1 min).
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from sandbox.runtimes import envs, tf_envs

from .conftest import Server, start_server
from .test_rest_conformance import CASES

pytestmark = pytest.mark.tfserving
CACHE = envs.cache_dir()  # the one runtime cache the sandbox's pods use


def fingerprint_model(path: Path) -> Path:
    import tensorflow as tf

    class WithFingerprint(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            fp = tf.data.Dataset.from_tensor_slices(x).fingerprint()  # op DatasetFingerprint, new in TF 2.15+
            return {"y": x * 2.0, "fingerprint": tf.fill(tf.shape(x)[:1], fp)}

    m = WithFingerprint()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    return path


def test_python_for_current_version_is_this_interpreter(tmp_path: Path) -> None:
    assert tf_envs.python_for("2.18", tmp_path) == Path(sys.executable)
    assert tf_envs.python_for("2.18.1", tmp_path) == Path(sys.executable)
    assert not list(tmp_path.iterdir())  # nothing created


def test_python_for_version_without_wheel_points_to_compose(tmp_path: Path) -> None:
    with pytest.raises(tf_envs.TFRuntimeUnavailable, match="Docker Compose"):
        tf_envs.python_for("2.6", tmp_path)
    with pytest.raises(ValueError, match="not a TensorFlow version"):
        tf_envs.python_for("latest", tmp_path)


def wait_state(server: Server, model: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = server.request("GET", f"/v1/models/{model}")
        if status == 200 and body["model_version_status"][0]["state"] in ("AVAILABLE", "END"):
            return body["model_version_status"][0]
        time.sleep(0.2)
    raise AssertionError(server.log_text()[-2000:])


@pytest.fixture(scope="module")
def py214() -> Path:
    return tf_envs.python_for("2.14", CACHE, progress=lambda m: print(m, file=sys.stderr))


@pytest.mark.slow
def test_new_op_serves_on_218_and_fails_on_214(tmp_path: Path, py214: Path) -> None:
    fingerprint_model(tmp_path / "fp" / "1")
    args = ["--model_name=fp", f"--model_base_path={tmp_path / 'fp'}"]
    new = start_server(args, tmp_path / "new.log", python=str(tf_envs.python_for("2.18", CACHE)), ready_model="fp")
    try:
        status, body = new.request("POST", "/v1/models/fp:predict", {"instances": [[1, 2, 3, 4]]})
        assert status == 200, body
        assert body["predictions"][0]["y"] == [2.0, 4.0, 6.0, 8.0]
    finally:
        new.stop()
    old = start_server(args, tmp_path / "old.log", python=str(py214))
    try:
        entry = wait_state(old, "fp")
        assert (entry["state"], entry["status"]["error_code"]) == ("END", "NOT_FOUND")
        expected = (f"Op type not registered 'DatasetFingerprint' in binary running on {socket.gethostname()}. "
                    "Make sure the Op and Kernel are registered in the binary running in this process.")
        assert expected in entry["status"]["error_message"]
        assert expected in old.log_text()
        status, body = old.request("POST", "/v1/models/fp:predict", {"instances": [[1, 2, 3, 4]]})
        assert (status, body) == (404, {"error": "Servable not found for request: Latest(fp)"})
    finally:
        old.stop()


# Rows whose expected bodies do not quote TF runtime text, so they hold on every TF version.
PORTABLE = {"status", "status-unknown-model", "status-no-version-dir", "status-no-serve-tag", "metadata", "row",
            "row-named", "columnar", "multi-row-b64", "multi-columnar", "float-six-digits", "int64-beyond-double",
            "string-and-b64", "ragged", "wrong-input-name", "unknown-signature", "classify", "regress", "label",
            "malformed-json", "status-warmup-ok"}


@pytest.mark.slow
def test_server_runs_on_tf214_runtime(zoo: dict[str, Path], zoo_server: Server, tmp_path: Path, py214: Path) -> None:
    """The same server code under TF 2.14 (numpy 1.x, protobuf 4.x) answers the portable conformance rows."""
    from .test_rest_conformance import test_rest

    args = [f"--model_config_file={zoo_server.extra['config']}", "--file_system_poll_wait_seconds=60"]
    server = start_server(args, tmp_path / "log",
                          python=str(py214), ready_model="dense")
    try:
        for case_id, method, path, body, status, expected in CASES:
            if case_id in PORTABLE:
                test_rest(server, zoo, method, path, body, status, expected)
        import grpc
        import numpy as np
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
            req = predict_pb2.PredictRequest()
            req.model_spec.name = "dense"
            req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1, 1]], np.float32)))
            resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(req, timeout=30)
            assert list(resp.outputs["y"].float_val) == [3.5]
    finally:
        server.stop()
