"""In-process checks of the pure pieces: status mapping, number formatting, flags and config parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.runtimes.tfserving import config, errors, json_output
from sandbox.runtimes.tfserving.flags import parse_flags
from sandbox.runtimes.tfserving.json_values import write_decimal

pytestmark = pytest.mark.tfserving


@pytest.mark.parametrize(("code", "http"), [
    ("INVALID_ARGUMENT", 400), ("FAILED_PRECONDITION", 400), ("OUT_OF_RANGE", 400), ("NOT_FOUND", 404),
    ("UNIMPLEMENTED", 501), ("UNAVAILABLE", 503), ("INTERNAL", 500), ("UNKNOWN", 500), ("DATA_LOSS", 500),
    ("DEADLINE_EXCEEDED", 504), ("RESOURCE_EXHAUSTED", 429), ("PERMISSION_DENIED", 403), ("UNAUTHENTICATED", 401),
])
def test_http_status_mapping(code: str, http: int) -> None:
    assert errors.ServingError(code, "m").http_status == http


def test_tf_error_keeps_code_and_text() -> None:
    class FakeOpError(Exception):
        error_code = 9
        message = "Could not find variable x"

    err = errors.from_exception(FakeOpError())
    assert (err.code, err.message, err.to_string()) == (
        "FAILED_PRECONDITION", "Could not find variable x", "FAILED_PRECONDITION: Could not find variable x")


@pytest.mark.parametrize(("value", "single", "text"), [
    (1.0, True, "1.0"), (0.5, True, "0.5"), (float(np.float32(1 / 3)), True, "0.333333343"),
    (9e6, True, "9e+06"), (123456789.0, False, "123456789.0"), (0.1, False, "0.1"),
    (float("nan"), True, "NaN"), (float("-inf"), False, "-Infinity"),
])
def test_write_decimal(value: float, single: bool, text: str) -> None:
    assert write_decimal(value, single) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_float32_outputs_round_trip(values: list[float]) -> None:
    arr = np.array(values, np.float32)
    out = json.loads(json_output.predict_json({"y": arr}, "columnar"))["outputs"]
    assert np.array_equal(np.array(out, np.float32), arr)


def test_flags_accept_both_forms() -> None:
    a = parse_flags(["--port=1", "--rest_api_port", "2", "--model_name", "m", "--model_base_path=/p",
                     "--enable_batching"])
    assert (a.port, a.rest_api_port, a.model_name, a.model_base_path, a.rest_api_host) == (1, 2, "m", "/p", "127.0.0.1")
    assert a.ignored == ("enable_batching",)
    with pytest.raises(SystemExit):
        parse_flags(["--port=1"])  # neither a base path nor a config file


def test_config_policies_and_labels() -> None:
    configs = config.parse_config_text("""
        model_config_list {
          config { name: 'a' base_path: '/a' model_platform: 'tensorflow' }
          config { name: 'b' base_path: '/b' model_version_policy { latest { num_versions: 2 } }
                   version_labels { key: 'stable' value: 3 } }
          config { name: 'c' base_path: '/c' model_version_policy { specific { versions: 1 versions: 4 } } }
          config { name: 'd' base_path: '/d' model_version_policy { all {} } }
        }""")
    got = {c.name: c.policy.select([1, 2, 3, 4]) for c in configs}
    assert got == {"a": {4}, "b": {3, 4}, "c": {1, 4}, "d": {1, 2, 3, 4}}
    assert configs[1].labels == {"stable": 3}


def test_config_errors() -> None:
    with pytest.raises(errors.ServingError, match="Illegal to list model a multiple times"):
        config.parse_config_text("model_config_list { config { name: 'a' } config { name: 'a' } }")
    with pytest.raises(errors.ServingError, match="Invalid protobuf file"):
        config.parse_config_text("model_config_list { nope: 1 }")
