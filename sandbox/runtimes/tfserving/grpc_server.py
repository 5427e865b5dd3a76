"""gRPC ``tensorflow.serving.PredictionService`` and ``ModelService`` on the installed servicer bases."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
from google.protobuf import text_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from . import config, errors, metadata, runner, tensors
from .manager import ModelManager


def _spec(spec: Any) -> tuple[str, int | None, str | None]:
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


def _abort(context: grpc.ServicerContext, exc: BaseException) -> Any:
    err = errors.from_exception(exc)
    context.abort(getattr(grpc.StatusCode, err.code, grpc.StatusCode.UNKNOWN), err.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress and GetModelMetadata over the shared manager."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            servable = self.manager.resolve(*_spec(request.model_spec))
            signame = request.model_spec.signature_name or runner.DEFAULT_SIGNATURE
            sig = runner.signature_or_error(servable, signame)
            inputs = {k: tensors.to_ndarray(k, v) for k, v in request.inputs.items()}
            outputs = runner.run_signature(servable, sig, inputs, list(request.output_filter))
            resp = predict_pb2.PredictResponse()
            resp.model_spec.name = servable.name
            resp.model_spec.version.value = servable.version
            resp.model_spec.signature_name = signame
            for alias, arr in outputs.items():
                tensors.to_proto_field(arr, resp.outputs[alias])
            return resp
        except Exception as exc:
            return _abort(context, exc)

    def _examples(self, request: Any, context: grpc.ServicerContext, verb: str) -> Any:
        try:
            servable = self.manager.resolve(*_spec(request.model_spec))
            signame = request.model_spec.signature_name or runner.DEFAULT_SIGNATURE
            if verb == "classify":
                resp = classification_pb2.ClassificationResponse()
                resp.result.CopyFrom(runner.classify(servable, signame, request.input))
            else:
                resp = regression_pb2.RegressionResponse()
                resp.result.CopyFrom(runner.regress(servable, signame, request.input))
            resp.model_spec.name = servable.name
            resp.model_spec.version.value = servable.version
            resp.model_spec.signature_name = signame
            return resp
        except Exception as exc:
            return _abort(context, exc)

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._examples(request, context, "classify")

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._examples(request, context, "regress")

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not implemented by the sandbox server")

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            servable = self.manager.resolve(*_spec(request.model_spec))
            return metadata.metadata_response(servable, list(request.metadata_field))
        except Exception as exc:
            return _abort(context, exc)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus, and HandleReloadConfigRequest applied to the running server."""

    def __init__(self, manager: ModelManager, server: Any) -> None:
        self.manager = manager
        self.server = server

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            if not request.HasField("model_spec"):
                raise errors.invalid_argument("Missing ModelSpec")
            states = self.manager.status(*_spec(request.model_spec))
            resp: get_model_status_pb2.GetModelStatusResponse = metadata.status_response(states)
            return resp
        except Exception as exc:
            return _abort(context, exc)

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        resp = model_management_pb2.ReloadConfigResponse()
        try:
            configs = config.parse_config_text(text_format.MessageToString(request.config))
            self.server.reload(configs)
        except errors.ServingError as exc:
            resp.status.error_code = errors.CODE_NUMBERS.get(exc.code, 2)
            resp.status.error_message = exc.message
        return resp


def serve_grpc(manager: ModelManager, host: str, port: int, server: Any) -> grpc.Server:
    """Start the gRPC server (returns once listening)."""
    g = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"),
                    options=[("grpc.max_receive_message_length", 2**31 - 1),
                             ("grpc.max_send_message_length", 2**31 - 1)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(manager), g)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, server), g)
    if g.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"Failed to bind gRPC port {host}:{port}")
    g.start()
    return g
