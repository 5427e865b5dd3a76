"""One table of REST requests against one server: status, metadata, predict, classify, regress and errors.

Each row: (id, method, path, body, expected HTTP status, expected body). The expected body is a dict or
list (compared exactly), a string (the error message must contain it, after ``{placeholders}`` are
filled with the test's paths and host name), raw text marked with ``RAW:``, or ``TF_SAYS``: the error
TensorFlow itself raises in this process for the same graph and instances (kernel messages differ by CPU).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from sandbox.testing.reference import reference_error, saved_model_reference

from .conftest import Server

pytestmark = pytest.mark.tfserving

OK = {"error_code": "OK", "error_message": ""}
TF_SAYS = "TF_SAYS"


def avail(*versions: int) -> dict[str, Any]:
    return {"model_version_status": [{"version": str(v), "state": "AVAILABLE", "status": OK} for v in versions]}


OP_MSG = (
    "Op type not registered 'FooOpV99' in binary running on {host}. Make sure the Op and Kernel are registered in "
    "the binary running in this process."
)
D = "/v1/models/dense:predict"
M = "/v1/models/multi:predict"
T = "/v1/models/typed:predict"

CASES: list[tuple[str, str, str, Any, int, Any]] = [
    # --- model status ----------------------------------------------------------------------------
    ("status", "GET", "/v1/models/dense", None, 200, avail(1)),
    ("status-version", "GET", "/v1/models/dense/versions/1", None, 200, avail(1)),
    ("status-all-versions-newest-first", "GET", "/v1/models/versions", None, 200, avail(2, 1)),
    ("status-label", "GET", "/v1/models/versions/labels/canary", None, 200, avail(2)),
    ("status-unknown-label", "GET", "/v1/models/versions/labels/nope", None, 400,
     "Unrecognized servable version label: nope"),
    ("status-unknown-version", "GET", "/v1/models/dense/versions/7", None, 404,
     "Could not find version 7 of model dense"),
    ("status-unknown-model", "GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("status-missing-name", "GET", "/v1/models", None, 400, "Missing model name in request."),
    ("status-no-version-dir", "GET", "/v1/models/flat", None, 404,
     "No versions of servable flat found under base path {flat}"),
    ("status-missing-base-path", "GET", "/v1/models/missingbase", None, 404,
     "Could not find base path {missingbase} for servable missingbase with error NOT_FOUND: {missingbase} not found"),
    ("status-no-serve-tag", "GET", "/v1/models/notag", None, 200, {"model_version_status": [{
        "version": "1", "state": "END", "status": {"error_code": "NOT_FOUND", "error_message": (
            "Could not find meta graph def matching supplied tags: { serve }. To inspect available tag-sets in the "
            "SavedModel, please use the SavedModel CLI: `saved_model_cli`")}}]}),
    ("status-op-not-registered", "GET", "/v1/models/badop", None, 200, "STATE:END:NOT_FOUND:" + OP_MSG),
    ("status-python-only-op", "GET", "/v1/models/pyfunc", None, 200,
     "STATE:END:NOT_FOUND:Op type not registered 'EagerPyFunc' in binary running on {host}."),
    ("status-no-saved-model-pb", "GET", "/v1/models/nopb", None, 200,
     "STATE:END:NOT_FOUND:Could not find SavedModel .pb or .pbtxt at supplied export directory path: {nopb}/1"),
    ("status-warmup-failed", "GET", "/v1/models/coldwarm", None, 200,
     "STATE:END:INVALID_ARGUMENT:Signature input alias: x(feed name: serving_default_x:0) not found in request"),
    ("status-warmup-ok", "GET", "/v1/models/warm", None, 200, avail(1)),
    # --- metadata ----------------------------------------------------------------------------------
    ("metadata", "GET", "/v1/models/dense/metadata", None, 200, "METADATA"),
    ("metadata-unknown", "GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)"),
    # --- routing -------------------------------------------------------------------------------------
    ("get-on-predict-route", "GET", "/v1/models/dense:predict", None, 400,
     "Malformed request: GET /v1/models/dense:predict"),
    ("post-on-status-route", "POST", "/v1/models/dense", {}, 400, "Malformed request: POST /v1/models/dense"),
    ("unknown-verb", "POST", "/v1/models/dense:explain", {}, 400, "Malformed request: POST /v1/models/dense:explain"),
    ("case-insensitive-route", "POST", "/V1/Models/dense:predict", {"instances": [[1, 1]]}, 200,
     {"predictions": [[3.5]]}),
    ("not-v1", "GET", "/healthz", None, 404, "RAW:Not Found"),
    # --- predict: formats --------------------------------------------------------------------------
    ("row", "POST", D, {"instances": [[1, 1], [2, 0]]}, 200, {"predictions": [[3.5], [2.5]]}),
    ("row-named", "POST", D, {"instances": [{"x": [1.0, 1.0]}]}, 200, {"predictions": [[3.5]]}),
    ("columnar", "POST", D, {"inputs": [[1, 1], [2, 0]]}, 200, {"outputs": [[3.5], [2.5]]}),
    ("columnar-named", "POST", D, {"inputs": {"x": [[1, 1]]}}, 200, {"outputs": [[3.5]]}),
    ("signature-explicit", "POST", D, {"signature_name": "serving_default", "instances": [[0, 0]]}, 200,
     {"predictions": [[0.5]]}),
    ("multi-row", "POST", M, {"instances": [{"a": [1, 2], "tag": "hi"}]}, 200,
     {"predictions": [{"echo": "hi", "echo_bytes": {"b64": "aGk="}, "scaled": [2.0, 4.0]}]}),
    ("multi-row-b64", "POST", M, {"instances": [{"a": [1, 2], "tag": {"b64": "aGk="}}]}, 200,
     {"predictions": [{"echo": "hi", "echo_bytes": {"b64": "aGk="}, "scaled": [2.0, 4.0]}]}),
    ("multi-columnar", "POST", M, {"inputs": {"a": [[1, 2]], "tag": ["x"]}}, 200,
     {"outputs": {"echo": ["x"], "echo_bytes": [{"b64": "eA=="}], "scaled": [[2.0, 4.0]]}}),
    ("scalar-output-columnar", "POST", T, {"signature_name": "scalar_out", "inputs": [1, 2]}, 200,
     {"outputs": {"total": 3.0, "y": [1.0, 2.0]}}),
    # --- predict: dtypes -----------------------------------------------------------------------------
    ("float-six-digits", "POST", T, {"instances": [1.0, 3]}, 200, "RAW:{\"predictions\": [0.333333343, 1.0]}"),
    ("float-nan-inf", "POST", T, b'{"instances": [NaN, Infinity, -Infinity]}', 200,
     "RAW:{\"predictions\": [NaN, Infinity, -Infinity]}"),
    ("int32", "POST", T, {"signature_name": "int32", "instances": [1, -2]}, 200, {"predictions": [2, -1]}),
    ("int64-beyond-double", "POST", T, {"signature_name": "int64", "instances": [9007199254740993]}, 200,
     {"predictions": [9007199254740994]}),
    ("double", "POST", T, {"signature_name": "double", "inputs": [0.1]}, 200, {"outputs": [0.2]}),
    ("bool", "POST", T, {"signature_name": "boolean", "instances": [True, False]}, 200, {"predictions": [False, True]}),
    ("string-and-b64", "POST", T, {"signature_name": "length", "instances": ["abc", {"b64": "AAEC"}]}, 200,
     {"predictions": [3, 3]}),
    # --- predict: errors -----------------------------------------------------------------------------
    ("both-keys", "POST", D, {"instances": [[1, 1]], "inputs": [[1, 1]]}, 400,
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ("no-keys", "POST", D, {"foo": 1}, 400, "Missing 'inputs' or 'instances' key"),
    ("instances-not-list", "POST", D, {"instances": 3}, 400, "Excepting 'instances' to be an list/array"),
    ("instances-empty", "POST", D, {"instances": []}, 400, "No values in 'instances' array"),
    ("malformed-json", "POST", D, b"{", 400, "JSON Parse error: Missing a name for object member. at offset: 1"),
    ("malformed-json-comma", "POST", D, b'{"instances": [1 2]}', 400,
     "JSON Parse error: Missing a comma or ']' after an array element. at offset: 17"),
    ("empty-body", "POST", D, b"", 400, "JSON Parse error: The document is empty"),
    ("not-object", "POST", D, b"[1]", 400, "JSON Value: [\n    1\n] Is not object"),
    ("signature-not-string", "POST", D, {"signature_name": 1, "instances": [[1, 1]]}, 400,
     "not formatted correctly. 'signature_name' key must be a string value."),
    ("unknown-signature", "POST", D, {"signature_name": "nope", "instances": [[1, 1]]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("no-serving-default", "POST", "/v1/models/nodefault:predict", {"instances": [[1, 1]]}, 400,
     'Serving signature name: "serving_default" not found in signature def'),
    ("custom-signature-key", "POST", "/v1/models/nodefault:predict", {"signature_name": "predict",
                                                                      "instances": [[1, 1]]}, 200,
     {"predictions": [[3.5]]}),
    ("wrong-input-name", "POST", D, {"instances": [{"z": [1, 1]}]}, 400,
     "Failed to process element: 0 key: z of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not "
     "have named input: z"),
    ("ragged", "POST", D, {"instances": [[1, 1], [1]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
    ("ragged-same-size", "POST", D, {"instances": [[[1, 1]], [[1], [1]]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [1,2] but got: [2,1]"),
    ("ragged-columnar", "POST", D, {"inputs": [[1, 1], [1]]}, 400,
     "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ("string-for-float", "POST", D, {"instances": [["a", 1]]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"a\" Type: String is not "
     "of expected type: float"),
    ("b64-for-float", "POST", D, {"instances": [{"b64": "aGk="}]}, 400,
     'Type: Object is not of expected type: float'),
    ("missing-batch-dim", "POST", D, {"instances": [1, 1]}, 400, TF_SAYS),
    ("size-mismatch", "POST", D, {"instances": [[1, 2, 3]]}, 400, TF_SAYS),
    # Deeper than numpy's 64 dimensions, or than Python's JSON parser recurses: a 400, never a 500.
    ("too-many-dimensions", "POST", D, b'{"instances": ' + b"[" * 70 + b"1" + b"]" * 70 + b"}", 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Too many dimensions in tensor: "
     "the JSON value nests 69 lists"),
    ("nested-too-deeply", "POST", D, b'{"instances": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}", 400,
     "JSON Parse error: the document nests too deeply to parse"),
    ("float-for-int32", "POST", T, {"signature_name": "int32", "instances": [1.5]}, 400,
     "JSON Value: 1.5 Type: Number is not of expected type: int32"),
    ("int32-overflow", "POST", T, {"signature_name": "int32", "instances": [2147483648]}, 400,
     "JSON Value: 2147483648 Type: Number is not of expected type: int32"),
    ("float-lossy-int", "POST", T, {"instances": [16777217]}, 400,
     "Cannot convert JSON value: 16777217 to float without loss of precision."),
    ("number-for-bool", "POST", T, {"signature_name": "boolean", "instances": [1]}, 400,
     "JSON Value: 1 Type: Number is not of expected type: bool"),
    ("number-for-string", "POST", T, {"signature_name": "length", "instances": [1]}, 400,
     "JSON Value: 1 Type: Number is not of expected type: string"),
    ("bad-base64", "POST", M, {"instances": [{"a": [1, 2], "tag": {"b64": "a-b_"}}]}, 400,
     "Failed to process element: 0 key: tag of 'instances' list. Error: INVALID_ARGUMENT: Unable to base64 decode"),
    ("scalar-output-row", "POST", T, {"signature_name": "scalar_out", "instances": [1, 2]}, 400,
     "Tensor name: total has no shape information "),
    ("multi-plain-list", "POST", M, {"instances": [[1, 2]]}, 400,
     "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
     "tensorinfo_map"),
    ("multi-missing-key", "POST", M, {"instances": [{"a": [1, 2]}]}, 400,
     "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": [\n        1,\n        2\n    ]\n} "
     "keys must be equal to: a,tag"),
    ("multi-object-then-list", "POST", M, {"instances": [{"a": [1, 2], "tag": "x"}, [1, 2]]}, 400,
     "Expecting object but got list at item 1 of input list"),
    ("multi-columnar-missing", "POST", M, {"inputs": {"a": [[1, 2]]}}, 400,
     "Missing named input: tag in 'inputs' object."),
    ("multi-columnar-plain", "POST", M, {"inputs": [[1, 2]]}, 400,
     "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"),
    ("half-row-wrapped-invalid", "POST", T, {"signature_name": "half", "instances": [1.0]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED: Conversion of JSON Value: 1.0 to type: "
     "half"),
    ("half-columnar-unimplemented", "POST", T, {"signature_name": "half", "inputs": [1.0]}, 501,
     "Conversion of JSON Value: 1.0 to type: half"),
    # Two unrestored variables are read in parallel, so which one TensorFlow names varies per run.
    ("variables-missing", "POST", "/v1/models/novars:predict", {"instances": [[1, 1]]}, 400,
     "This could mean that the variable has been deleted. In TF1, it can also mean the variable is uninitialized."),
    # --- servable resolution -------------------------------------------------------------------------
    ("unknown-model", "POST", "/v1/models/nope:predict", {"instances": [[1, 1]]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("failed-model", "POST", "/v1/models/notag:predict", {"instances": [[1, 1]]}, 404,
     "Servable not found for request: Latest(notag)"),
    ("latest-version", "POST", "/v1/models/versions:predict", {"instances": [[1, 1]]}, 200, {"predictions": [[30.5]]}),
    ("specific-version", "POST", "/v1/models/versions/versions/1:predict", {"instances": [[1, 1]]}, 200,
     {"predictions": [[3.5]]}),
    ("label", "POST", "/v1/models/versions/labels/stable:predict", {"instances": [[1, 1]]}, 200,
     {"predictions": [[3.5]]}),
    ("unknown-version", "POST", "/v1/models/versions/versions/9:predict", {"instances": [[1, 1]]}, 404,
     "Servable not found for request: Specific(versions, 9)"),
    ("unknown-label", "POST", "/v1/models/versions/labels/nope:predict", {"instances": [[1, 1]]}, 400,
     "Unrecognized servable version label: nope"),
    ("warm-model-serves", "POST", "/v1/models/warm:predict", {"instances": [[1, 1]]}, 200, {"predictions": [[3.5]]}),
    # --- classify / regress --------------------------------------------------------------------------
    ("classify", "POST", "/v1/models/examples:classify", {"examples": [{"f": 0.0}]}, 200,
     {"results": [[["neg", 0.5], ["pos", 0.5]]]}),
    ("classify-context", "POST", "/v1/models/examples:classify", {"context": {"f": 0.0}, "examples": [{}]}, 200,
     {"results": [[["neg", 0.5], ["pos", 0.5]]]}),
    ("regress", "POST", "/v1/models/examples:regress", {"signature_name": "regress", "examples": [{"f": [1.5]}]},
     200, {"results": [3.0]}),
    ("classify-no-examples", "POST", "/v1/models/examples:classify", {"context": {}}, 400,
     "When method is classify, key 'examples' is expected and was not found"),
    ("regress-on-classify-signature", "POST", "/v1/models/examples:regress", {"examples": [{"f": 1.0}]}, 400,
     "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify"),
    ("classify-on-predict-signature", "POST", "/v1/models/dense:classify", {"examples": [{"f": 1.0}]}, 400,
     "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
     "tensorflow/serving/predict"),
    ("example-bad-feature", "POST", "/v1/models/examples:classify", {"examples": [{"f": [1.0, "a"]}]}, 400,
     "Unexpected element type in feature: f expecting type: float"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_rest(zoo_server: Server, zoo: dict[str, Path], method: str, path: str, body: Any, status: int,
              expected: Any) -> None:
    got_status, got = zoo_server.request(method, path, body)
    fill = {k: str(v) for k, v in zoo.items()} | {"host": socket.gethostname()}

    def fmt(text: str) -> str:
        for k, v in fill.items():
            text = text.replace("{" + k + "}", v)
        return text

    assert got_status == status, got
    if isinstance(expected, str) and expected.startswith("RAW:"):
        import urllib.request

        if status == 200:
            data = body if isinstance(body, bytes) else __import__("json").dumps(body).encode()
            with urllib.request.urlopen(urllib.request.Request(zoo_server.url + path, data=data)) as r:
                assert r.read().decode() == expected[4:]
        else:
            assert got == expected[4:]
    elif expected == TF_SAYS:
        model = path.split("/")[3].split(":")[0]
        reference = saved_model_reference(zoo[model] / "1")
        assert set(got) == {"error"}, got
        assert reference_error(reference, body["instances"]) in got["error"]
    elif expected == "METADATA":
        assert got["model_spec"] == {"name": "dense", "signature_name": "", "version": "1"}
        sig = got["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sig["method_name"] == "tensorflow/serving/predict"
        x = sig["inputs"]["x"]
        assert x["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", "2"]
        assert sig["outputs"]["y"]["dtype"] == "DT_FLOAT"
    elif isinstance(expected, str) and expected.startswith("STATE:"):
        _, state, code, msg = expected.split(":", 3)
        (entry,) = got["model_version_status"]
        assert (entry["state"], entry["status"]["error_code"]) == (state, code)
        assert fmt(msg) in entry["status"]["error_message"]
    elif isinstance(expected, str):
        assert set(got) == {"error"}, got
        assert fmt(expected) in got["error"]
    else:
        assert got == expected


def test_load_failures_are_logged_in_tf_serving_words(zoo_server: Server, zoo: dict[str, Path]) -> None:
    log = zoo_server.log_text()
    assert "Loading servable: {name: badop version: 1} failed: NOT_FOUND: Op type not registered 'FooOpV99'" in log
    assert f"No versions of servable flat found under base path {zoo['flat']}" in log
    assert "Successfully loaded servable version {name: dense version: 1}" in log
    assert "Finished reading warmup data for model at" in log


def test_error_body_is_json_with_content_type(zoo_server: Server) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(zoo_server.url + D, data=b"{", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.headers["Content-Type"] == "application/json"


def test_kernel_messages_are_compared_with_the_kernels_in_use(zoo: dict[str, Path], tmp_path: Path) -> None:
    """With oneDNN off (Eigen kernels, as on CPUs where TensorFlow does not pick oneDNN), TensorFlow words the
    missing-batch-dim error differently; the served message still equals what TensorFlow says in-process."""
    import json
    import os
    import subprocess
    import sys

    from .conftest import ROOT, start_server

    eigen = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    inprocess = subprocess.run(
        [sys.executable, "-c", "import json, sys; from pathlib import Path; "
         "from sandbox.testing.reference import reference_error, saved_model_reference; "
         "print(json.dumps(reference_error(saved_model_reference(Path(sys.argv[1])), [1.0, 1.0])))",
         str(zoo["dense"] / "1")],
        env={**os.environ, **eigen, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
    )
    expected = json.loads(inprocess.stdout.strip().splitlines()[-1])
    server = start_server([f"--model_base_path={zoo['dense']}", "--model_name=dense"], tmp_path / "eigen.log",
                          ready_model="dense", env=eigen)
    try:
        status, got = server.request("POST", D, {"instances": [1, 1]})
    finally:
        server.stop()
    assert status == 400 and expected in got["error"], (expected, got)
