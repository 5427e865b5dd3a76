"""Every bad input gets a code, a message and a hint, never a traceback, and never breaks what serves."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.engine import Sandbox

pytestmark = pytest.mark.slow


def test_wrong_uris_are_refused_before_anything_is_uploaded(
    cli: Callable[..., Any], sandbox: Sandbox, torch_model: tuple[Path, Any]
) -> None:
    folder, _ = torch_model
    for uri in ("s3://models/only-model-id", "s3://models/m/1/model.mar", "gs://models/m/1"):
        code, out, err = cli("upload", str(folder), uri, "--quiet")
        assert code == 2 and "error[uri." in err and "Hint:" in err and "Traceback" not in err
    assert sandbox.list_objects("s3://models/only-model-id") == []
    code, _, err = cli("deploy", "s3://models/m/1/saved_model.pb", "--image", "tf2-cpu.2-18")
    assert code == 2 and "names a file" in err
    code, _, err = cli("deploy", "s3://models/m/1", "--image", "tf3-cpu.9-9")
    assert code == 2 and "unknown prebuilt image" in err


def test_gateway_errors_are_json_with_reason_and_hint(
    sandbox: Sandbox, cli: Callable[..., Any], torch_model: tuple[Path, Any]
) -> None:
    folder, _ = torch_model
    cli("upload", str(folder), "s3://models/bad-in/1", "--quiet")
    assert cli("deploy", "s3://models/bad-in/1", "--image", "pytorch-cpu.2-4", "--endpoint", "bad-in")[0] == 0
    base = sandbox.running().gateway_url + "/endpoints/default"
    cases = [
        ("nope", b'{"instances": [[1.0]]}', 404, "endpoint.not-found"),
        ("bad-in", b'{"instances": [[1.0', 400, "predict.malformed-json"),
        ("bad-in", b'{"inputs": [[1.0]]}', 400, "predict.missing-instances"),
        ("bad-in", b'{"instances": []}', 400, "predict.bad-instances"),
        ("bad-in", b'{"instances": {"a": 1}}', 400, "predict.bad-instances"),
    ]
    for endpoint, body, status, reason in cases:
        response = requests.post(f"{base}/{endpoint}/v1/model:predict", data=body, timeout=30)
        error = response.json()["error"]
        assert (response.status_code, error["reason"]) == (status, reason), error
        assert error["message"] and error["hint"]
    big = json.dumps({"instances": [[0.0] * 4] * 100_000}).encode()
    response = requests.post(f"{base}/bad-in/v1/model:predict", data=big, timeout=30)
    assert response.status_code == 400
    assert "Request payload size exceeds the limit: 1572864 bytes." in response.json()["error"]["message"]
    chunked = requests.post(f"{base}/bad-in/v1/model:predict", data=iter([big[:1_000_000], big[1_000_000:]]), timeout=30)
    assert chunked.status_code == 400 and chunked.json()["error"]["reason"] == "predict.payload-too-large"
    wrong_method = requests.get(f"{base}/bad-in/v1/model:predict", timeout=30)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["reason"] == "http.405"
    # rawPredict passes the body through to TorchServe unchanged.
    raw = requests.post(f"{base}/bad-in/v1/model:rawPredict", json={"instances": [[1.0, 2.0, 3.0, 4.0]]}, timeout=30)
    assert raw.status_code == 200 and "predictions" in raw.json() and raw.headers["X-Vertex-AI-Deployed-Model-Id"]


def test_missing_bucket_role_fails_with_the_fix_then_grant_makes_it_ready(
    cli: Callable[..., Any], torch_model: tuple[Path, Any]
) -> None:
    folder, _ = torch_model
    cli("upload", str(folder), "s3://models/iam-model/1", "--quiet")
    assert cli("iam", "revoke", "--role", "project-bucket-object-viewer", "--bucket", "models")[0] == 0
    try:
        code, _, err = cli("deploy", "s3://models/iam-model/1", "--image", "pytorch-cpu.2-4", "--endpoint", "iam-ep")
        assert code == 1
        assert "vai-default-serving-sa cannot read bucket models" in err
        assert "iam grant" in err and "project-bucket-object-viewer" in err
    finally:
        assert cli("iam", "grant", "--role", "project-bucket-object-viewer", "--bucket", "models")[0] == 0
    code, out, err = cli("deploy", "s3://models/iam-model/1", "--image", "pytorch-cpu.2-4", "--endpoint", "iam-ep")
    assert code == 0, err


def test_failed_rollout_keeps_the_previous_version_serving(
    sandbox: Sandbox, cli: Callable[..., Any], torch_model: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, reference = torch_model
    cli("upload", str(folder), "s3://models/rollout/1", "--quiet")
    assert cli("deploy", "s3://models/rollout/1", "--image", "pytorch-cpu.2-4", "--endpoint", "rollout")[0] == 0
    _, first = sandbox.predict("rollout", [[1.0, 2.0, 3.0, 4.0]])
    broken = tmp_path / "broken"
    broken.mkdir()
    with zipfile.ZipFile(broken / "model.mar", "w") as archive:
        archive.writestr(
            "MAR-INF/MANIFEST.json",
            json.dumps({"model": {"modelName": "model", "handler": "nope.py", "serializedFile": "missing.pt"}}),
        )
    cli("upload", str(broken), "s3://models/rollout/2", "--quiet")
    code, _, err = cli(
        "deploy", "s3://models/rollout/2", "--image", "pytorch-cpu.2-4", "--endpoint", "rollout", "--force"
    )
    assert code == 1 and "failed" in err
    status, answer = sandbox.predict("rollout", [[1.0, 2.0, 3.0, 4.0]])
    assert status == 200 and answer["deployedModelId"] == first["deployedModelId"]
    assert sandbox.list_objects("s3://models/rollout/2/")[0]["key"] == "rollout/2/model.mar"
