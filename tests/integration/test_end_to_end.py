"""export -> upload -> deploy -> predict through the CLI, for both frameworks, against real servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import close

pytestmark = pytest.mark.slow


@pytest.mark.torchserve
def test_torch_model_serves_torch_numbers(cli: Callable[..., Any], torch_model: tuple[Path, Any]) -> None:
    folder, reference = torch_model
    code, out, _ = cli("upload", str(folder), "s3://models/e2e-torch/1", "--quiet")
    assert code == 0 and "checksums verified" in out
    code, out, err = cli("deploy", "s3://models/e2e-torch/1", "--image", "pytorch-cpu.2-4", "--endpoint", "e2e-torch")
    assert code == 0, err
    predict_url = out.split("predict URL: ")[1].split()[0]
    instances = [[1.0, 2.0, 3.0, 4.0], [0.5, -0.5, 0.0, 2.0]]
    code, out, _ = cli("predict", "e2e-torch", "--instances", json.dumps(instances))
    answer = json.loads(out)
    assert code == 0 and close(answer["predictions"], reference(instances), atol=1e-6)
    assert answer["deployedModelId"].isdigit()
    over_http = requests.post(predict_url, json={"instances": instances}, timeout=30).json()
    assert over_http == answer


@pytest.mark.tfserving
def test_tf_model_serves_keras_numbers(cli: Callable[..., Any], tf_model: tuple[Path, Any]) -> None:
    folder, reference = tf_model
    assert cli("upload", str(folder), "s3://models/e2e-tf/1", "--quiet")[0] == 0
    code, out, err = cli("deploy", "s3://models/e2e-tf/1", "--image", "tf2-cpu.2-18", "--endpoint", "e2e-tf")
    assert code == 0, err
    predict_url = out.split("predict URL: ")[1].split()[0]
    # JSON ints are accepted for a float signature, as TF Serving does.
    answer = requests.post(predict_url, json={"instances": [[1, 2, 3, 4]]}, timeout=30).json()
    assert close(answer["predictions"], reference([[1, 2, 3, 4]]))
    code, out, _ = cli("get", "deployedmodel", "e2e-tf-e2e-tf-1", "-o", "jsonpath={.status.primaryCondition}")
    assert json.loads(out)["message"] == "DeployedModel is ready"
    code, out, _ = cli("get", "endpoint", "e2e-tf", "-o", "jsonpath={.status.conditions[0].reason}")
    assert out.strip() == "ResourceReady"


@pytest.mark.tfserving
def test_vertex_style_route_and_model_server_errors(
    sandbox: Any, cli: Callable[..., Any], tf_model: tuple[Path, Any]
) -> None:
    folder, _ = tf_model
    cli("upload", str(folder), "s3://models/e2e-tf-routes/1", "--quiet")
    assert cli("deploy", "s3://models/e2e-tf-routes/1", "--image", "tf2-cpu.2-18", "--endpoint", "routes")[0] == 0
    base = sandbox.running().gateway_url
    url = f"{base}/v1/projects/default/locations/local/endpoints/routes:predict"
    ok = requests.post(url, json={"instances": [[1.0, 2.0, 3.0, 4.0]]}, timeout=30)
    assert ok.status_code == 200 and "deployedModelId" in ok.json()
    # A wrong shape is the model server's INVALID_ARGUMENT, passed through with its status and text.
    bad = requests.post(url, json={"instances": [[1.0, 2.0]]}, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert bad.json()["error"]["reason"] == "predict.model-server-error"
