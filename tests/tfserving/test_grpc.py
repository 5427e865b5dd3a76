"""gRPC PredictionService / ModelService through the real ``tensorflow_serving.apis`` stubs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from .conftest import Server

pytestmark = pytest.mark.tfserving


@pytest.fixture(scope="module")
def channel(zoo_server: Server) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(f"127.0.0.1:{zoo_server.grpc_port}")
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(model: str = "dense", x: np.ndarray | None = None, **spec: object) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    for k, v in spec.items():
        if k == "version":
            req.model_spec.version.value = int(v)  # type: ignore[call-overload]
        else:
            setattr(req.model_spec, k, v)
    req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1, 1]], np.float32) if x is None else x))
    return req


def rpc_error(fn: object, req: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(req, timeout=10)  # type: ignore[operator]
    return info.value


def test_predict(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    resp = stub.Predict(predict_request(), timeout=10)
    assert list(resp.outputs["y"].float_val) == [3.5]
    assert tf.make_ndarray(resp.outputs["y"]).shape == (1, 1)
    assert (resp.model_spec.name, resp.model_spec.version.value, resp.model_spec.signature_name) == (
        "dense", 1, "serving_default")


def test_predict_version_and_label(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    assert list(stub.Predict(predict_request("versions"), timeout=10).outputs["y"].float_val) == [30.5]
    assert list(stub.Predict(predict_request("versions", version=1), timeout=10).outputs["y"].float_val) == [3.5]
    resp = stub.Predict(predict_request("versions", version_label="stable"), timeout=10)
    assert resp.model_spec.version.value == 1


def test_predict_errors(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    e = rpc_error(stub.Predict, predict_request("nope"))
    assert (e.code(), e.details()) == (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")
    e = rpc_error(stub.Predict, predict_request("versions", version=9))
    assert e.details() == "Servable not found for request: Specific(versions, 9)"
    e = rpc_error(stub.Predict, predict_request("versions", version_label="nope"))
    assert (e.code(), e.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: nope")
    e = rpc_error(stub.Predict, predict_request(signature_name="nope"))
    assert (e.code(), e.details()) == (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.')
    # artifact-bugs #15/#16: a TensorProto keeps its dtype; the session refuses it (DirectSession call frame)
    e = rpc_error(stub.Predict, predict_request(x=np.array([[1, 1]], np.float64)))
    assert (e.code(), e.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided")
    e = rpc_error(stub.Predict, predict_request(x=np.array([[b"1", b"1"]], object)))
    assert e.details() == "Expects arg[0] to be float but string is provided"


def test_predict_dtype_mismatch_counts_args_in_sorted_feed_order(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    """Feeds serving_default_a:0 and serving_default_tag:0 are args 0 and 1, whatever the request's map order."""
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "multi"
    req.inputs["tag"].CopyFrom(tf.make_tensor_proto(np.array([1], np.int64)))
    req.inputs["a"].CopyFrom(tf.make_tensor_proto(np.array([[1.0, 2.0]], np.float32)))
    assert rpc_error(stub.Predict, req).details() == "Expects arg[1] to be string but int64 is provided"
    req.inputs["tag"].CopyFrom(tf.make_tensor_proto(np.array([b"x"], object)))
    assert list(stub.Predict(req, timeout=10).outputs["scaled"].float_val) == [2.0, 4.0]


def test_predict_input_alias_errors(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    req = predict_request()
    req.inputs["z"].CopyFrom(req.inputs.pop("x"))
    e = rpc_error(stub.Predict, req)
    assert e.details().startswith(
        "Signature input alias: x(feed name: serving_default_x:0) not found in request and no default value provided."
    )
    req = predict_request()
    req.inputs["z"].CopyFrom(req.inputs["x"])
    e = rpc_error(stub.Predict, req)
    assert e.details() == ("input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. "
                           "Missing but required: {}.")
    req = predict_request()
    req.output_filter.append("nope")
    e = rpc_error(stub.Predict, req)
    assert e.details() == "output tensor alias not found in signature: nope Outputs expected to be in the set {y}."


def test_predict_string_outputs(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "multi"
    req.inputs["a"].CopyFrom(tf.make_tensor_proto(np.array([[1, 2]], np.float32)))
    req.inputs["tag"].CopyFrom(tf.make_tensor_proto(np.array([b"\x00\xff"], object)))
    resp = stub.Predict(req, timeout=10)
    assert list(resp.outputs["echo_bytes"].string_val) == [b"\x00\xff"]
    assert list(resp.outputs["scaled"].float_val) == [2.0, 4.0]


def test_classify_and_regress(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    creq = classification_pb2.ClassificationRequest()
    creq.model_spec.name = "examples"
    creq.input.example_list.examples.add().features.feature["f"].float_list.value.append(0.0)
    result = stub.Classify(creq, timeout=10).result
    assert [(c.label, round(c.score, 3)) for c in result.classifications[0].classes] == [("neg", 0.5), ("pos", 0.5)]
    rreq = regression_pb2.RegressionRequest()
    rreq.model_spec.name = "examples"
    rreq.model_spec.signature_name = "regress"
    rreq.input.example_list.examples.add().features.feature["f"].float_list.value.append(1.5)
    assert stub.Regress(rreq, timeout=10).result.regressions[0].value == pytest.approx(3.0)


def test_multi_inference_unimplemented(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    e = rpc_error(stub.MultiInference, inference_pb2.MultiInferenceRequest())
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED


def test_metadata(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "dense"
    req.metadata_field.append("signature_def")
    resp = stub.GetModelMetadata(req, timeout=10)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigs)
    assert sigs.signature_def["serving_default"].inputs["x"].dtype == tf.float32.as_datatype_enum
    assert resp.model_spec.version.value == 1


def test_model_status(channel: grpc.Channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "versions"
    resp = stub.GetModelStatus(req, timeout=10)
    assert [(s.version, s.state) for s in resp.model_version_status] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE), (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
    req.model_spec.name = "notag"
    (status,) = stub.GetModelStatus(req, timeout=10).model_version_status
    assert status.state == get_model_status_pb2.ModelVersionStatus.END
    assert status.status.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert status.status.error_message.startswith("Could not find meta graph def matching supplied tags: { serve }")
    req.model_spec.name = "nope"
    e = rpc_error(stub.GetModelStatus, req)
    assert (e.code(), e.details()) == (grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")
