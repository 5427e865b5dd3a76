"""`deploy`: every argument validated before anything is written, what it replaces said, `--traffic` canaries,
and warnings when an upload or a delete touches what serves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sandbox.engine import Sandbox
from tests.integration.conftest import close

INSTANCES = [[1.0, 2.0, 3.0, 4.0]]
Cli = Callable[..., tuple[int, str, str]]


def inventory(sb: Sandbox) -> dict[str, list[str]]:
    return {
        kind: sorted(r["metadata"]["name"] for r in sb.get(kind))
        for kind in ("ResourcePool", "DeployedModel", "Endpoint")
    }


def test_deploy_validates_every_argument_before_any_side_effect(
    sandbox: Sandbox, cli: Cli, tf_model: tuple[Path, Any], tmp_path: Path
) -> None:
    sandbox.upload(tf_model[0], "s3://models/checked/1", progress=False)
    before, pods_before = inventory(sandbox), sandbox.pods()
    uri, image = "s3://models/checked/1", "tf2-cpu.2-18"

    code, _, err = cli("deploy", uri, "--image", image, "--endpoint", "BAD_EP")
    assert code == 2
    assert "error[resource.invalid]: --endpoint 'BAD_EP': invalid Endpoint" in err
    manifest = tmp_path / "endpoint.yaml"  # `apply` says the same of the same name
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "prediction.aiplatform.gdc.goog/v1",
                "kind": "Endpoint",
                "metadata": {"name": "BAD_EP"},
                "spec": {"destinations": [{"serviceRef": {"kind": "DeployedModel", "name": "x"}}]},
            }
        )
    )
    _, _, apply_err = cli("apply", "-f", str(manifest))
    field_line = next(line for line in apply_err.splitlines() if "metadata.name" in line)
    assert field_line in err.splitlines()

    for args, code_name in (
        (["--traffic", "0"], "deploy.bad-traffic"),
        (["--traffic", "101"], "deploy.bad-traffic"),
        (["--replicas", "0"], "deploy.bad-replicas"),
        (["--replicas", "9"], "deploy.bad-replicas"),
    ):
        code, _, err = cli("deploy", uri, "--image", image, "--endpoint", "checked-ep", *args)
        assert code == 2 and f"error[{code_name}]" in err, (args, err)
    code, _, err = cli("deploy", "s3://models/never-uploaded/1", "--image", image, "--endpoint", "checked-ep")
    assert code == 1 and "error[deploy.artifact-not-found]: nothing is uploaded at s3://models/never-uploaded/1/" in err
    assert "gdc-sandbox upload" in err

    assert inventory(sandbox) == before  # nothing was written, nothing started
    assert sandbox.pods() == pods_before


def test_deploy_says_what_it_replaces_and_traffic_sends_a_share_to_the_new_version(
    sandbox: Sandbox, cli: Cli, tf_model: tuple[Path, Any]
) -> None:
    for version in ("1", "2", "3"):
        sandbox.upload(tf_model[0], f"s3://models/canary/{version}", progress=False)
    image = ("--image", "tf2-cpu.2-18", "--endpoint", "canary-ep")
    assert cli("deploy", "s3://models/canary/1", *image)[0] == 0

    code, out, _ = cli("deploy", "s3://models/canary/2", *image, "--traffic", "30")
    assert code == 0, out
    assert "traffic of endpoint canary-ep: canary-ep-canary-1 70%, canary-ep-canary-2 30%" in out
    assert "replaced" not in out
    split = {
        d["serviceRef"]["name"]: d["trafficPercentage"]
        for d in sandbox.get("Endpoint", "canary-ep")[0]["spec"]["destinations"]
    }
    assert split == {"canary-ep-canary-1": 70, "canary-ep-canary-2": 30}

    code, out, _ = cli("deploy", "s3://models/canary/3", *image)
    assert code == 0, out
    assert "replaced DeployedModel canary-ep-canary-1 on endpoint canary-ep (it had 70% of the traffic)" in out
    assert "replaced DeployedModel canary-ep-canary-2 on endpoint canary-ep (it had 30% of the traffic)" in out
    names = {dm["metadata"]["name"] for dm in sandbox.get("DeployedModel")}
    assert "canary-ep-canary-3" in names and not names & {"canary-ep-canary-1", "canary-ep-canary-2"}
    sandbox.delete("DeployedModel", "canary-ep-canary-3")


def test_overwriting_a_deployed_version_and_deleting_a_routed_model_warn(
    sandbox: Sandbox, cli: Cli, tf_model: tuple[Path, Any], other_tf_model: tuple[Path, Any]
) -> None:
    uri = "s3://models/overwritten/1"
    sandbox.upload(tf_model[0], uri, progress=False)
    assert cli("deploy", uri, "--image", "tf2-cpu.2-18", "--endpoint", "over-ep")[0] == 0

    code, _, err = cli("upload", str(other_tf_model[0]), uri, "--overwrite", "--quiet")
    assert code == 0
    redeploy = "gdc-sandbox deploy s3://models/overwritten/1/ --image tf2-cpu.2-18 --endpoint over-ep"
    assert "warning: DeployedModel over-ep-overwritten-1 serves s3://models/overwritten/1/ and keeps serving" in err
    assert redeploy in err
    status, body = sandbox.predict("over-ep", INSTANCES)
    assert status == 200 and close(body["predictions"], tf_model[1](INSTANCES))  # the old bytes, as warned

    code, out, _ = cli(*redeploy.split()[1:])  # the step the warning gives rolls the new bytes out
    assert code == 0, out
    status, body = sandbox.predict("over-ep", INSTANCES)
    assert status == 200 and close(body["predictions"], other_tf_model[1](INSTANCES))
    assert sandbox.get("DeployedModel", "over-ep-overwritten-1")[0]["status"]["servingGeneration"] == 2

    code, out, err = cli("delete", "deployedmodel", "over-ep-overwritten-1")
    assert code == 0 and "deployedmodel/over-ep-overwritten-1 deleted" in out
    assert "warning: Endpoint over-ep still gives DeployedModel over-ep-overwritten-1 100% of its traffic: the " in err
    assert "endpoint now answers 503 (endpoint.not-ready)" in err
    status, body = sandbox.predict("over-ep", INSTANCES)
    assert status == 503 and "DeployedModel over-ep-overwritten-1 does not exist" in body["error"]["message"]
    assert "`gdc-sandbox deploy` a version to endpoint over-ep" in body["error"]["hint"]  # not: get what is gone
