"""Model status and metadata messages shared by REST and gRPC (get_model_status_impl.cc, get_model_metadata_impl.cc)."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from . import errors
from .loader import Servable
from .manager import VersionState


def status_response(states: list[VersionState]) -> Any:
    """``GetModelStatusResponse`` for the given version states."""
    from tensorflow_serving.apis import get_model_status_pb2

    resp = get_model_status_pb2.GetModelStatusResponse()
    for vs in states:
        s = resp.model_version_status.add()
        s.version = vs.version
        s.state = get_model_status_pb2.ModelVersionStatus.State.Value(vs.state)
        s.status.SetInParent()
        if vs.error is not None:
            s.status.error_code = errors.CODE_NUMBERS.get(vs.error.code, 2)
            s.status.error_message = vs.error.message
    return resp


def _to_dict(msg: Any) -> dict[str, Any]:
    """MessageToDict with proto field names and default values, across protobuf 4.x and 5.x."""
    try:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    except TypeError:  # protobuf < 5.26
        return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                         including_default_value_fields=True)


def status_json(states: list[VersionState]) -> str:
    return json.dumps(_to_dict(status_response(states)), indent=1)


def signature_def_map(servable: Servable) -> Any:
    from tensorflow_serving.apis import get_model_metadata_pb2

    m = get_model_metadata_pb2.SignatureDefMap()
    for k, v in servable.signatures.items():
        m.signature_def[k].CopyFrom(v)
    return m


def metadata_response(servable: Servable, fields: list[str]) -> Any:
    """``GetModelMetadataResponse``; only the ``signature_def`` field exists, as in TF Serving."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    if not fields:
        raise errors.invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for f in fields:
        if f != "signature_def":
            raise errors.invalid_argument(f"Metadata field {f} is not supported")
    resp = get_model_metadata_pb2.GetModelMetadataResponse()
    resp.model_spec.name = servable.name
    resp.model_spec.version.value = servable.version
    resp.metadata["signature_def"].Pack(signature_def_map(servable))
    return resp


def metadata_json(servable: Servable) -> str:
    """REST metadata body: ``{"model_spec": ..., "metadata": {"signature_def": ...}}`` (cached per servable)."""
    if servable.metadata_json is None:
        spec = {"name": servable.name, "signature_name": "", "version": str(servable.version)}
        body = {"model_spec": spec, "metadata": {"signature_def": _to_dict(signature_def_map(servable))}}
        servable.metadata_json = json.dumps(body, indent=1)
    return servable.metadata_json
