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
    for name in ("cpu-pool", "gpu-pool", "my-model", "my-endpoint"):
        text = text.replace(name, f"{name}-{suffix}")
    return text


@pytest.fixture
def manifests(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(example: str, suffix: str) -> Path:
        path = tmp_path / f"{suffix}-{example}"
        path.write_text(_renamed((EXAMPLES / example).read_text(), suffix))
        return path

    return write


def test_the_documented_manifests_and_readiness_commands_work_verbatim(
    sandbox: Sandbox, cli: Callable[..., Any], tf_model: tuple[Path, Any], manifests: Callable[[str, str], Path]
) -> None:
    folder, reference = tf_model
    sandbox.upload(folder, "s3://models/my-model-rt/1", progress=False)
    pool, gpu_pool, dm, ep = (
        str(manifests(example, "rt"))
        for example in ("resource-pool.yaml", "resource-pool-gpu.yaml", "deployed-model.yaml", "endpoint.yaml")
    )
    code, out, err = cli("apply", "-f", pool, "-f", gpu_pool, "-f", dm, "-f", ep)
    assert code == 0, err
    assert out.splitlines() == [
        "resourcepool.prediction.aiplatform.gdc.goog/cpu-pool-rt created",
        "resourcepool.prediction.aiplatform.gdc.goog/gpu-pool-rt created",
        "deployedmodel.prediction.aiplatform.gdc.goog/my-model-rt-v1 created",
        "endpoint.aiplatform.gdc.goog/my-endpoint-rt created",
    ]
    assert "Warning: ResourcePool gpu-pool-rt" in err and "gpuDutyCycleTarget" in err
    assert "DeployedModel" not in err  # the documented TF args are honoured: nothing to warn about
    code, out, err = cli(
        "--kubeconfig", "/nonexistent/kubeconfig", "wait", "-f", dm, "--for=condition=Ready", "--timeout=300s"
    )
    assert code == 0, err
    assert out.strip() == "deployedmodel.prediction.aiplatform.gdc.goog/my-model-rt-v1 condition met"
    assert "--kubeconfig /nonexistent/kubeconfig is ignored" in err

    # GDC's three readiness commands, with `kubectl --kubeconfig PATH` replaced by `gdc-sandbox`.
    code, out, _ = cli("get", "-f", dm, "-o", "jsonpath={.status.primaryCondition}")
    condition = json.loads(out)
    assert sorted(condition) == [
        "firstObservedTime",
        "lastUpdateTime",
        "message",
        "observedGeneration",
        "reason",
        "resourceName",
        "type",
    ]
    assert (condition["type"], condition["reason"], condition["message"], condition["resourceName"]) == (
        "DeployedModel",
        "Ready",
        "DeployedModel is ready",
        "my-model-rt-v1",
    )
    code, out, _ = cli("get", "-f", ep, "-o", 'jsonpath={$.status.conditions[?(@.type == "EndpointReady")]}')
    assert json.loads(out) == {
        "type": "EndpointReady",
        "status": "True",
        "reason": "ResourceReady",
        "message": "Endpoint Ready",
    }
    code, out, err = cli(
        "get",
        "endpoint",
        "my-endpoint-rt",
        "-n",
        "default",
        "-o",
        "jsonpath={.status.endpointFQDN}",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    )
    fqdn = out.strip()
    assert code == 0 and fqdn == "my-endpoint-rt.default.prediction.sandbox.localhost"

    answer = requests.post(
        f"{sandbox.running().gateway_url}/v1/model:predict",
        json={"instances": [[1, 2, 3, 4]]},
        headers={"Host": fqdn},
        timeout=30,
    ).json()
    assert close(answer["predictions"], reference([[1, 2, 3, 4]]))
    # the artifactLocation is the model folder; modelVersionID picks the version folder inside it
    served = sandbox.get("DeployedModel", "my-model-rt-v1")[0]["status"]
    assert served["servingArtifact"] == "s3://models/my-model-rt/1/"
    assert served["currentReplicas"] == 1 and served["replicas"][0]["startupSeconds"] > 0

    code, out, _ = cli("apply", "-f", dm)
    assert out.strip() == "deployedmodel.prediction.aiplatform.gdc.goog/my-model-rt-v1 unchanged"
    Path(pool).write_text(Path(pool).read_text().replace("cpuTarget: 50", "cpuTarget: 70"))
    code, out, _ = cli("apply", "-f", pool)
    assert out.strip() == "resourcepool.prediction.aiplatform.gdc.goog/cpu-pool-rt configured"
    code, out, _ = cli("get", "deployedmodels", "-o", "name")
    assert "deployedmodel.prediction.aiplatform.gdc.goog/my-model-rt-v1" in out.splitlines()
    code, out, _ = cli("get", "resourcepool/cpu-pool-rt", "-o", "wide")
    assert "n2-standard-4-gdc min 1 max 3" in out and "1/1" in out
    code, out, _ = cli("get", "deployedmodels", "-o", "yaml")
    assert "my-model-rt-v1" in out and yaml.safe_load(out)["kind"] == "List"
    code, out, _ = cli("delete", "-f", ep)  # kubectl's ways: -f FILE, TYPE/NAME, TYPE NAME
    assert code == 0 and out.strip() == "endpoint/my-endpoint-rt deleted"
    assert cli("delete", "deployedmodel/my-model-rt-v1")[0] == 0
    code, out, _ = cli("wait", "deployedmodel/my-model-rt-v1", "--for=delete", "--timeout=10s")
    assert code == 0 and out.strip().endswith("deleted")
    code, _, err = cli("get", "deployedmodel", "my-model-rt-v1")
    assert code == 1 and "not found" in err


def test_every_problem_of_every_document_is_reported_and_nothing_is_applied(
    sandbox: Sandbox, cli: Callable[..., Any], tmp_path: Path
) -> None:
    pool = yaml.safe_load(_renamed((EXAMPLES / "resource-pool.yaml").read_text(), "inv"))
    dm = yaml.safe_load(_renamed((EXAMPLES / "deployed-model.yaml").read_text(), "inv"))
    dm["metadata"]["name"] = "My_Model"
    dm["spec"]["modelSpec"]["artifactURI"] = dm["spec"]["modelSpec"].pop("artifactLocation")
    endpoint = yaml.safe_load(_renamed((EXAMPLES / "endpoint.yaml").read_text(), "inv"))
    endpoint["spec"]["destinations"][0]["trafficPercentage"] = 90
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all([pool, dm, endpoint]))
    code, _, err = cli("apply", "-f", str(path))
    assert code == 2
    assert "2 of 3 documents are invalid" in err
    assert "document 2: invalid DeployedModel 'My_Model'" in err
    assert "metadata.name: must be a DNS label" in err  # reported together with the spec's problems
    assert "spec.modelSpec.artifactURI: unknown field; allowed here: artifactLocation, id," in err
    assert "spec.modelSpec.artifactLocation: required field is missing" in err
    assert "document 3: invalid Endpoint" in err
    assert "spec: destinations[].trafficPercentage must add up to 100 (got 90)" in err
    assert "spec.:" not in err and "Hint: fix the fields named above; nothing was applied" in err
    assert cli("get", "resourcepool", "cpu-pool-inv")[0] == 1  # the valid document was not applied either


def test_a_destination_the_sandbox_cannot_route_is_named(
    sandbox: Sandbox, cli: Callable[..., Any], tmp_path: Path
) -> None:
    endpoint = yaml.safe_load(_renamed((EXAMPLES / "endpoint.yaml").read_text(), "svc"))
    endpoint["spec"]["destinations"][0]["serviceRef"] = {"kind": "Service", "name": "legacy", "namespace": "default"}
    path = tmp_path / "svc.yaml"
    path.write_text(yaml.safe_dump(endpoint))
    code, out, err = cli("apply", "-f", str(path))
    assert code == 0 and "kind Service is not routable by the sandbox" in err
    cond = sandbox.get("Endpoint", "my-endpoint-svc")[0]["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "DestinationNotRoutable")
    status, answer = sandbox.predict("my-endpoint-svc", [[1.0, 2.0, 3.0, 4.0]])
    assert status == 503 and answer["error"]["reason"] == "endpoint.destination-not-routable"
    assert cli("delete", "endpoint", "my-endpoint-svc")[0] == 0


def test_traffic_split_follows_the_percentages(
    sandbox: Sandbox, cli: Callable[..., Any], tf_model: tuple[Path, Any], manifests: Callable[[str, str], Path]
) -> None:
    """The documented canary (90/10) on the documented GPU pool (served on the CPU)."""
    folder, _ = tf_model
    for version in ("1", "2"):
        sandbox.upload(folder, f"s3://models/my-model-ts/{version}", progress=False)
    gpu_pool = (EXAMPLES / "resource-pool-gpu.yaml").read_text().replace("gpu-pool", "cpu-pool-ts")
    sandbox.apply([yaml.safe_load(gpu_pool)])
    for example in ("deployed-model.yaml", "endpoint.yaml", "canary.yaml"):
        assert cli("apply", "-f", str(manifests(example, "ts")))[0] == 0
    for name in ("my-model-ts-v1", "my-model-ts-v2"):
        assert cli("wait", f"deployedmodel/{name}", "--for=condition=Ready", "--timeout=300s")[0] == 0
    code, _, err = cli(
        "wait", "endpoint", "my-endpoint-ts", "--for=jsonpath={.status.conditions[0].status}=True", "--timeout=60s"
    )
    assert code == 0, err
    ids = {
        dm: sandbox.get("DeployedModel", dm)[0]["status"]["deployedModelID"]
        for dm in ("my-model-ts-v1", "my-model-ts-v2")
    }
    counts: Counter[str] = Counter()
    for _ in range(300):
        status, answer = sandbox.predict("my-endpoint-ts", [[1.0, 2.0, 3.0, 4.0]])
        assert status == 200
        counts[answer["deployedModelId"]] += 1
    share_v2 = counts[ids["my-model-ts-v2"]] / 300
    assert set(counts) == set(ids.values())
    assert 0.04 <= share_v2 <= 0.18, counts  # 10% +- 8 points; binomial sd is 1.7 points at n=300


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
