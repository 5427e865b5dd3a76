"""The GDC resources as users apply them: the example manifests, validation, traffic split, replicas, auth."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sandbox.engine import Sandbox
from sandbox.settings import Settings
from tests.integration.conftest import close

pytestmark = [pytest.mark.slow, pytest.mark.tfserving]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gdc"


def _renamed(text: str, suffix: str) -> str:
    """The example manifests, unchanged apart from names (so tests do not collide)."""
    for name in ("cpu-pool", "my-model-v1", "my-model-v2", "my-endpoint"):
        text = text.replace(name, f"{name}-{suffix}")
    return text.replace("s3://models/my-model/", f"s3://models/my-model-{suffix}/").replace(
        "id: my-model\n", f"id: my-model-{suffix}\n"
    )


@pytest.fixture
def manifests(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(example: str, suffix: str) -> Path:
        path = tmp_path / f"{suffix}-{example}"
        path.write_text(_renamed((EXAMPLES / example).read_text(), suffix))
        return path

    return write


def test_apply_get_delete_round_trip_with_the_example_manifests(
    sandbox: Sandbox, cli: Callable[..., Any], tf_model: tuple[Path, Any], manifests: Callable[[str, str], Path]
) -> None:
    folder, reference = tf_model
    sandbox.upload(folder, "s3://models/my-model-rt/1", progress=False)
    for example in ("resource-pool.yaml", "deployed-model.yaml", "endpoint.yaml"):
        code, out, err = cli("apply", "-f", str(manifests(example, "rt")), "--wait")
        assert code == 0, err
    code, out, _ = cli("get", "deployedmodel", "my-model-v1-rt", "-o", "jsonpath={.status.primaryCondition}")
    condition = json.loads(out)
    assert (condition["type"], condition["reason"], condition["message"]) == (
        "DeployedModel",
        "Ready",
        "DeployedModel is ready",
    )
    code, out, _ = cli("get", "endpoint", "my-endpoint-rt", "-o", "json")
    endpoint = json.loads(out)
    ready = endpoint["status"]["conditions"][0]
    assert ready == {"type": "EndpointReady", "status": "True", "reason": "ResourceReady", "message": "Endpoint Ready"}
    assert endpoint["status"]["endpointFQDN"] == "my-endpoint-rt.default.prediction.sandbox.localhost"
    # minReplica: 2 really runs two model servers, and requests go to both.
    pods = [p for p in sandbox.pods() if p["deployedModel"] == "my-model-v1-rt"]
    assert len(pods) == 2 and len({p["pid"] for p in pods}) == 2
    gateway = sandbox.running().gateway_url
    answer = requests.post(
        f"{gateway}/v1/model:predict",
        json={"instances": [[1, 2, 3, 4]]},
        headers={"Host": endpoint["status"]["endpointFQDN"]},
        timeout=30,
    ).json()
    assert close(answer["predictions"], reference([[1, 2, 3, 4]]))
    code, out, _ = cli("get", "deployedmodels", "-o", "yaml")
    assert "my-model-v1-rt" in out and yaml.safe_load(out)["kind"] == "List"
    assert cli("delete", "endpoint", "my-endpoint-rt")[0] == 0
    assert cli("delete", "deployedmodel", "my-model-v1-rt")[0] == 0
    code, _, err = cli("get", "deployedmodel", "my-model-v1-rt")
    assert code == 1 and "not found" in err


def test_an_invalid_document_applies_nothing_and_names_the_field(
    sandbox: Sandbox, cli: Callable[..., Any], tmp_path: Path
) -> None:
    docs = list(yaml.safe_load_all(_renamed((EXAMPLES / "resource-pool.yaml").read_text(), "inv")))
    dm = yaml.safe_load(_renamed((EXAMPLES / "deployed-model.yaml").read_text(), "inv"))
    dm["spec"]["modelSpec"]["artifactURI"] = dm["spec"]["modelSpec"].pop("artifactLocation")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all([*docs, dm]))
    code, _, err = cli("apply", "-f", str(path))
    assert code == 2
    assert "document 2" in err and "spec.modelSpec.artifactURI: unknown field" in err
    assert "spec.modelSpec.artifactLocation: required field is missing" in err
    assert cli("get", "resourcepool", "cpu-pool-inv")[0] == 1  # the valid document was not applied either


def test_traffic_split_follows_the_percentages(
    sandbox: Sandbox, cli: Callable[..., Any], tf_model: tuple[Path, Any], manifests: Callable[[str, str], Path]
) -> None:
    folder, _ = tf_model
    for version in ("1", "2"):
        sandbox.upload(folder, f"s3://models/my-model-ts/{version}", progress=False)
    pool = yaml.safe_load(manifests("resource-pool.yaml", "ts").read_text())
    pool["spec"]["dedicatedResources"]["autoscaling"] = {"minReplica": 1, "maxReplica": 1}
    sandbox.apply([pool])
    for example in ("deployed-model.yaml", "endpoint.yaml", "canary.yaml"):
        assert cli("apply", "-f", str(manifests(example, "ts")), "--wait")[0] == 0
    ids = {
        dm: sandbox.get("DeployedModel", dm)[0]["status"]["deployedModelID"]
        for dm in ("my-model-v1-ts", "my-model-v2-ts")
    }
    counts: Counter[str] = Counter()
    for _ in range(300):
        status, answer = sandbox.predict("my-endpoint-ts", [[1.0, 2.0, 3.0, 4.0]])
        assert status == 200
        counts[answer["deployedModelId"]] += 1
    share_v2 = counts[ids["my-model-v2-ts"]] / 300
    assert set(counts) == set(ids.values())
    assert 0.2 <= share_v2 <= 0.4, counts  # 30% +- 10 points; binomial sd is 2.6 points at n=300


@pytest.fixture
def auth_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(Settings(home=tmp_path / "auth", s3_port=0, gateway_port=0, prediction_auth=True, warm_images="none"))
    sb.up()
    yield sb
    sb.down()


@pytest.mark.torchserve
def test_prediction_auth_needs_a_token_with_the_prediction_role(
    auth_sandbox: Sandbox, torch_model: tuple[Path, Any]
) -> None:
    folder, _ = torch_model
    auth_sandbox.upload(folder, "s3://models/auth-model/1", progress=False)
    auth_sandbox.deploy("s3://models/auth-model/1", "pytorch-cpu.2-4", "auth-ep")
    instances = [[1.0, 2.0, 3.0, 4.0]]
    status, answer = auth_sandbox.predict("auth-ep", instances)
    assert status == 401 and answer["error"]["reason"] == "auth.unauthenticated"
    assert auth_sandbox.predict("auth-ep", instances, token="made-up")[0] == 401
    token = auth_sandbox.iam("token", identity="alice")["token"]
    status, answer = auth_sandbox.predict("auth-ep", instances, token=token)
    assert status == 403 and "vertex-ai-prediction-user" in answer["error"]["message"]
    auth_sandbox.iam("grant", identity="alice", role="vertex-ai-prediction-user")
    status, answer = auth_sandbox.predict("auth-ep", instances, token=token)
    assert status == 200 and "predictions" in answer
