"""The gateway's request parsing: any body gets the forwarded envelope or a 400 that says what is wrong.

Fuzzed with hypothesis, bounded (max_examples, no per-example deadline) so the suite stays fast and
deterministic in CI (``derandomize``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.control.api import _json
from sandbox.control.gateway import parse_envelope
from sandbox.errors import UsageError
from sandbox.runtimes.registry import RUNTIMES
from sandbox.runtimes.tensorflow import TFServingPod
from sandbox.runtimes.torchserve import TorchServePod

FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
envelope_like = st.dictionaries(
    st.sampled_from(["instances", "parameters", "signature_name", "inputs", "x"]) | st.text(max_size=8),
    json_values,
    max_size=4,
)


def assert_parsed_or_refused(data: bytes) -> None:
    try:
        forwarded, warnings = parse_envelope(data)
    except UsageError as exc:
        refused: UsageError | None = exc
    else:
        refused = None
        payload = json.loads(forwarded)  # what the pod receives: GDC's PredictRequest fields
        assert set(payload) <= {"instances", "parameters"} and "instances" in payload
        assert isinstance(payload["instances"], list) and payload["instances"]
        assert all(isinstance(w, str) and w for w in warnings)
    if refused is not None:
        assert refused.http_status == 400
        assert refused.code.startswith("predict.") and refused.message and refused.hint


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_get_a_400(data: bytes) -> None:
    assert_parsed_or_refused(data)


@settings(FUZZ, max_examples=120)
@given(json_values | envelope_like)
def test_any_json_document_parses_or_gets_a_400(document: Any) -> None:
    assert_parsed_or_refused(json.dumps(document).encode())


@FUZZ
@given(st.binary(max_size=200))
def test_admin_api_bodies_parse_or_get_a_400(data: bytes) -> None:
    from werkzeug.test import EnvironBuilder

    request = EnvironBuilder(method="POST", data=data).get_request()
    try:
        body: object = _json(request)
    except UsageError as exc:
        body = exc
    assert isinstance(body, dict) or (isinstance(body, UsageError) and body.code == "api.malformed-json")


@pytest.mark.parametrize("opening", ["[", '{"a":', '{"instances": ['])
def test_json_nested_100000_deep_is_a_400_not_a_sandbox_bug(opening: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_envelope((opening * 100_000).encode())
    assert info.value.http_status == 400
    assert info.value.code in ("predict.too-deeply-nested", "predict.malformed-json")


def test_closed_deep_nesting_is_refused_as_too_deep() -> None:
    body = b'{"instances": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}"
    with pytest.raises(UsageError) as info:
        parse_envelope(body)
    assert info.value.code == "predict.too-deeply-nested" and "nested too deeply" in info.value.message


def test_signature_name_and_other_keys_are_dropped_with_a_warning_naming_rawpredict() -> None:
    forwarded, warnings = parse_envelope(b'{"instances": [[1.0]], "signature_name": "classify", "extra": 1}')
    assert json.loads(forwarded) == {"instances": [[1.0]]}
    (warning,) = warnings
    assert '"extra", "signature_name"' in warning and "serving_default answered" in warning
    assert ":rawPredict" in warning and "--raw" in warning
    assert parse_envelope(b'{"instances": [[2]]}') == (b'{"instances": [[2]]}', [])  # as received


@pytest.mark.parametrize("parameters", ['{"confidence": 0.5}', "{}", "3", '"text"', "[1, 2]", "null"])
def test_parameters_of_any_json_type_are_forwarded_as_gdc_does(parameters: str) -> None:
    """GDC's PredictRequest.parameters is a protobuf Value: any JSON value is accepted and passed to the pod."""
    body = f'{{"instances": [[1.0]], "parameters": {parameters}}}'.encode()
    assert parse_envelope(body) == (body, [])  # as received: nothing to re-encode
    forwarded, warnings = parse_envelope(body[:-1] + b', "signature_name": "x"}')
    assert json.loads(forwarded) == {"instances": [[1.0]], "parameters": json.loads(parameters)}
    assert len(warnings) == 1 and '"signature_name"' in warnings[0]


def test_parameters_an_image_ignores_get_a_warning_that_names_its_server() -> None:
    body = b'{"instances": [[1.0]], "parameters": {"top_k": 3}}'
    ignored_by = TorchServePod.parameters_ignored_by
    forwarded, (warning,) = parse_envelope(body, ignored_by)
    assert forwarded == body
    assert warning.startswith('"parameters" had no effect') and ignored_by in warning and "GDC passes it" in warning
    assert parse_envelope(b'{"instances": [[1.0]]}', ignored_by) == (b'{"instances": [[1.0]]}', [])
    forwarded, warnings = parse_envelope(body[:-1] + b', "extra": 1}', ignored_by)
    assert [w.split(" ")[0] for w in warnings] == [":predict", '"parameters"']


def test_every_prebuilt_image_says_what_its_server_does_with_parameters() -> None:
    """Both prebuilt servers ignore ``parameters`` (TF Serving's json_tensor.cc reads signature_name, instances and
    inputs; TorchServe's JSONEnvelope._from_json reads instances): each runtime names that for the warning."""
    for framework, runtime in RUNTIMES.items():
        assert runtime.parameters_ignored_by, framework
    assert '"instances"' in TFServingPod.parameters_ignored_by and "TF Serving" in TFServingPod.parameters_ignored_by
    assert "json service envelope" in TorchServePod.parameters_ignored_by


def test_an_inputs_body_is_refused_with_a_hint_that_names_rawpredict() -> None:
    with pytest.raises(UsageError) as info:
        parse_envelope(b'{"inputs": {"x": [[1.0]]}}')
    assert info.value.code == "predict.missing-instances"
    assert '"inputs"' in info.value.message
    assert ":rawPredict" in info.value.hint and "gdc-sandbox predict --raw" in info.value.hint
