"""What the sandbox tells people is true and leads somewhere: predict errors, dropped keys, checker warnings
on deploy, hints whose commands work (mb, iam), and logs a support engineer can read."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.engine import Sandbox

pytestmark = pytest.mark.slow

ENDPOINT = "msg"


@pytest.fixture(scope="module")
def served(sandbox: Sandbox, torch_model: tuple[Path, Any]) -> str:
    """The torch Linear(4->2) serving on endpoint `msg`; returns its :predict URL."""
    folder, _ = torch_model
    sandbox.upload(folder, "s3://models/msg/1", overwrite=True, progress=False)
    deployment = sandbox.deploy("s3://models/msg/1", "pytorch-cpu.2-4", ENDPOINT)
    return deployment.predict_url


def test_predict_errors_are_code_message_and_hint_on_stderr(cli: Callable[..., Any], served: str) -> None:
    code, out, err = cli("predict", ENDPOINT, "--instances", "[[1.0]]")  # Linear(4->2) gets 1 value
    assert code == 1 and out == ""
    assert err.startswith("error[predict.model-server-error]: ") and "\nHint: " in err
    assert "model server log: " in err and "{" not in err.splitlines()[0][:40]
    code, out, err = cli("predict", "no-such-ep", "--instances", "[[1.0]]")
    assert (code, out) == (1, "") and err.startswith("error[endpoint.not-found]: ") and "Hint: " in err
    # scripts keep the raw answer on stdout
    code, out, err = cli("predict", ENDPOINT, "--instances", "[[1.0]]", "--format", "json")
    assert code == 1 and json.loads(out)["error"]["reason"] == "predict.model-server-error" and err == ""
    code, out, _ = cli("predict", ENDPOINT, "--instances", "[[1.0, 2.0, 3.0, 4.0]]")
    assert code == 0 and len(json.loads(out)["predictions"]) == 1


def test_raw_predict_errors_are_the_model_servers_words_with_a_hint(
    cli: Callable[..., Any], served: str, tmp_path: Path
) -> None:
    body = tmp_path / "raw.json"
    body.write_text(json.dumps({"instances": [[1.0]]}))
    code, out, err = cli("predict", ENDPOINT, "--raw", "--file", str(body))
    assert code == 1 and out == ""
    assert err.startswith("error[predict.model-server-error]: ") and "Prediction failed" in err
    assert "Hint: this is the model server's own answer" in err


def test_an_inputs_body_gets_a_hint_that_names_rawpredict(
    cli: Callable[..., Any], served: str, tmp_path: Path
) -> None:
    body = tmp_path / "columnar.json"
    body.write_text(json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]}))
    code, out, err = cli("predict", ENDPOINT, "--file", str(body))
    assert (code, out) == (2, "") and err.startswith("error[predict.missing-instances]: ")
    assert ":rawPredict" in err and "gdc-sandbox predict --raw" in err


def test_dropped_keys_are_served_as_gdc_does_with_a_warning_in_cli_and_header(
    cli: Callable[..., Any], served: str, tmp_path: Path
) -> None:
    body = {"instances": [[1.0, 2.0, 3.0, 4.0]], "signature_name": "other"}
    response = requests.post(served, json=body, timeout=30)
    assert response.status_code == 200 and response.json()["predictions"]
    warning = response.headers["Warning"]
    assert warning.startswith('299 gdc-sandbox "') and '\\"signature_name\\"' in warning and ":rawPredict" in warning
    assert response.headers["X-Vertex-AI-Deployed-Model-Id"] == response.json()["deployedModelId"]
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    code, out, err = cli("predict", ENDPOINT, "--file", str(path))
    assert code == 0 and json.loads(out)["predictions"]
    assert err.startswith('warning: :predict forwards only "instances"') and '"signature_name"' in err
    assert "gdc-sandbox predict --raw" in err
    assert "Warning" not in requests.post(served, json={"instances": body["instances"]}, timeout=30).headers


@pytest.fixture(scope="module")
def served_tf(sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Keras Dense(4->2) serving on endpoint `msg-tf`, uploaded with a stale copy of itself in old/ (a second
    SavedModel the image ignores: a checker warning, not an error); returns its :predict URL."""
    folder, _ = tf_model
    artifact = tmp_path_factory.mktemp("warned") / "with-old-copy"
    shutil.copytree(folder, artifact)
    shutil.copytree(folder, artifact / "old")
    sandbox.upload(artifact, "s3://models/msg-tf/1", overwrite=True, progress=False)
    return sandbox.deploy("s3://models/msg-tf/1", "tf2-cpu.2-18", "msg-tf").predict_url


@pytest.fixture(params=["torch", "tf"])
def any_served(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("served" if request.param == "torch" else "served_tf"))


def test_parameters_reach_the_model_server_which_ignores_them_and_the_user_is_told(
    any_served: str, cli: Callable[..., Any], tmp_path: Path
) -> None:
    """GDC passes "parameters" to the image's server; TF Serving and TorchServe's json envelope ignore it. The
    predictions are those of "instances" alone, and the Warning header and the CLI say so, naming the server."""
    instances = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]
    plain = requests.post(any_served, json={"instances": instances}, timeout=30)
    assert plain.status_code == 200 and "Warning" not in plain.headers
    for parameters in ({"confidence_threshold": 0.9, "max_predictions": 1}, 3):  # any JSON value, as GDC takes
        with_parameters = requests.post(any_served, json={"instances": instances, "parameters": parameters}, timeout=30)
        assert with_parameters.status_code == 200, with_parameters.text
        assert with_parameters.json()["predictions"] == plain.json()["predictions"]
        warning = with_parameters.headers["Warning"]
        assert warning.startswith('299 gdc-sandbox "\\"parameters\\" had no effect')
        assert ("TF Serving" if "msg-tf" in any_served else "TorchServe's json service envelope") in warning
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"instances": instances, "parameters": {"top_k": 1}}))
    endpoint = "msg-tf" if "msg-tf" in any_served else ENDPOINT
    code, out, err = cli("predict", endpoint, "--file", str(path))
    assert code == 0 and json.loads(out)["predictions"] == plain.json()["predictions"]
    assert err.startswith('warning: "parameters" had no effect: GDC passes it to the model server')


HTTP_FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@HTTP_FUZZ
@given(
    st.binary(max_size=120)
    | st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["instances", "a"]), inner),
        max_leaves=12,
    ).map(lambda doc: json.dumps({"instances": doc}).encode())
)
def test_no_request_body_gets_a_500_from_the_sandbox(any_served: str, data: bytes) -> None:
    response = requests.post(any_served, data=data, headers={"Content-Type": "application/json"}, timeout=30)
    if response.status_code == 200:
        return
    error = response.json()["error"]
    assert error["message"] and error["hint"] and error["reason"] != "internal", error
    assert response.status_code < 500 or error["reason"] == "predict.model-server-error", error


@pytest.mark.parametrize("opening", [b"[", b'{"instances": ['])
def test_json_nested_100000_deep_is_a_400_with_a_clear_message(any_served: str, opening: bytes) -> None:
    response = requests.post(any_served, data=opening * 100_000, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["reason"] in ("predict.too-deeply-nested", "predict.malformed-json")
    closed = b'{"instances": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}"
    response = requests.post(any_served, data=closed, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["reason"] == "predict.too-deeply-nested"


def test_json_nested_deeper_than_a_tensor_can_be_is_the_tf_servers_400(served_tf: str) -> None:
    body = b'{"instances": ' + b"[" * 500 + b"1" + b"]" * 500 + b"}"  # parses, but no tensor has 499 dims
    response = requests.post(served_tf, data=body, timeout=30)
    error = response.json()["error"]
    assert (response.status_code, error["reason"]) == (400, "predict.model-server-error"), error
    assert "Too many dimensions in tensor" in error["message"]


def hint_command(err: str) -> list[str]:
    """The first `gdc-sandbox ...` command a Hint line names, as argv."""
    hint = next(line for line in err.splitlines() if line.startswith("Hint: "))
    match = re.search(r"`gdc-sandbox ([^`]+)`", hint)
    assert match, hint
    return match.group(1).split()


def test_missing_bucket_hints_run_mb_then_grant_and_a_model_serves_from_it(
    cli: Callable[..., Any], sandbox: Sandbox, torch_model: tuple[Path, Any]
) -> None:
    folder, _ = torch_model
    code, _, err = cli("upload", str(folder), "s3://fresh-bucket/m/1", "--quiet")
    assert code == 1 and err.startswith("error[s3.NoSuchBucket]")
    assert hint_command(err) == ["mb", "s3://fresh-bucket"]
    code, _, err = cli("iam", "grant", "--role", "project-bucket-object-viewer", "--bucket", "fresh-bucket")
    assert code == 1 and err.startswith("error[iam.no-such-bucket]: bucket fresh-bucket does not exist")
    code, out, _ = cli(*hint_command(err))  # the hint's own command
    assert code == 0 and out.startswith("created bucket s3://fresh-bucket")
    grant = out.splitlines()[1].split(": ", 1)[1].split()
    assert grant[:3] == ["gdc-sandbox", "iam", "grant"]
    code, out, _ = cli(*grant[1:])  # the next step mb prints
    assert code == 0
    assert out.strip() == (
        "granted: vai-default-serving-sa now holds project-bucket-object-viewer on bucket fresh-bucket "
        "(project default)"
    )
    assert cli("mb", "s3://fresh-bucket")[1].startswith("bucket s3://fresh-bucket already exists")
    assert cli("upload", str(folder), "s3://fresh-bucket/m/1", "--quiet")[0] == 0
    code, _, err = cli("deploy", "s3://fresh-bucket/m/1", "--image", "pytorch-cpu.2-4", "--endpoint", "fresh")
    assert code == 0, err
    assert sandbox.predict("fresh", [[1.0, 2.0, 3.0, 4.0]])[0] == 200


def test_iam_list_filters_and_grant_revoke_print_a_line(cli: Callable[..., Any]) -> None:
    role = "vertex-ai-prediction-user"
    code, out, _ = cli("iam", "grant", "--identity", "alice", "--role", role)
    assert (code, out.strip()) == (0, f"granted: alice now holds {role} on the project (project default)")
    code, out, _ = cli("iam", "list", "--role", role)
    rows = out.splitlines()[1:]
    assert code == 0 and rows and all(role in row for row in rows) and any("alice" in row for row in rows)
    code, out, _ = cli("iam", "list", "--role", "project-bucket-object-viewer", "--bucket", "models")
    assert [row.split()[1:] for row in out.splitlines()[1:]] == [
        ["vai-default-serving-sa", "project-bucket-object-viewer", "models"]
    ]
    assert cli("iam", "list", "--role", "no-such-role")[2].startswith("error[iam.unknown-role]")
    code, out, _ = cli("iam", "revoke", "--identity", "alice", "--role", role)
    assert (code, out.strip()) == (0, f"revoked: alice no longer holds {role} on the project (project default)")
    assert "alice" not in cli("iam", "list")[1]


def test_deploy_shows_the_checkers_warnings(cli: Callable[..., Any], served_tf: str) -> None:
    # the same spec again: the deployment serving it is reported, with the checker's findings on it
    code, out, err = cli("deploy", "s3://models/msg-tf/1", "--image", "tf2-cpu.2-18", "--endpoint", "msg-tf")
    assert code == 0 and "is ready" in out, err
    assert "warning[layout.duplicate-model] another SavedModel sits in old/" in err
    assert "hint: the image loads only the top-level model; to avoid confusion, remove old/" in err
    code, out, _ = cli("get", "deployedmodel", "msg-tf-msg-tf-1", "-o", "jsonpath={.status.diagnostics[0].code}")
    assert (code, out.strip()) == (0, "layout.duplicate-model")  # kept with what serves, for `apply --wait` too


def test_control_plane_log_tells_what_happened_and_s3_log_is_plain(
    sandbox: Sandbox, served: str, cli: Callable[..., Any]
) -> None:
    status, answer = sandbox.predict(ENDPOINT, [[1.0, 2.0, 3.0, 4.0]])
    assert status == 200
    dm_id = answer["deployedModelId"]
    log = (sandbox.settings.log_dir / "control-plane.log").read_text()
    lines = log.splitlines()
    assert any(re.search(r"created DeployedModel default/msg-msg-1 generation 1: artifact s3://models/msg/1/", ln)
               for ln in lines), log[-3000:]
    assert any(f"DeployedModel default/msg-msg-1 (deployedModelId {dm_id}) Deploying -> Ready" in ln for ln in lines)
    assert any("Endpoint default/msg generation" in ln and "traffic msg-msg-1 100%" in ln for ln in lines)
    assert any(
        f"POST /endpoints/default/{ENDPOINT}/v1/model:predict -> 200 in " in ln and f"deployedModelId={dm_id}" in ln
        for ln in lines
    )
    cli("predict", ENDPOINT, "--instances", "[[1.0]]")
    log = (sandbox.settings.log_dir / "control-plane.log").read_text()
    assert re.search(rf"model:predict -> 5\d\d in [\d.]+ ms deployedModelId={dm_id} error=predict.model-server", log)
    s3_log = (sandbox.settings.log_dir / "s3.log").read_text()
    assert '"PUT /models/msg/1/model.mar' in s3_log and "\x1b[" not in s3_log


def test_an_image_the_sandbox_cannot_run_points_to_one_it_can_and_to_a_check_that_runs(
    cli: Callable[..., Any], tf_model: tuple[Path, Any]
) -> None:
    folder, _ = tf_model
    assert cli("upload", str(folder), "s3://models/old-tf/1", "--quiet")[0] == 0
    code, _, err = cli("deploy", "s3://models/old-tf/1", "--image", "tf2-cpu.2-6", "--endpoint", "old-tf")
    assert code == 1 and "error[deploy.ImageNotSupported]" in err, err
    assert "deploy with --image tf2-cpu.2-14" in err and "GDC_SANDBOX_BACKEND=compose" in err
    check = hint_command(err)
    assert check[:3] == ["check", "--image", "tf2-cpu.2-6"]
    code, out, err = cli(*check[:3], "s3://models/old-tf/1")  # the hint's check, on this artifact
    assert code in (0, 1) and "[tf.registry-approximate]" in out, out + err
    assert "`gdc-sandbox check --image tf2-cpu.2-18 PATH`" in out
