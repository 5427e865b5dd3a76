"""`gdc-sandbox check` as a command, and the deploy gate built on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.engine import Sandbox


def _mnist_mar(torch_model: tuple[Path, Any], tmp_path: Path) -> Path:
    folder, _ = torch_model
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mnist.mar").write_bytes((folder / "model.mar").read_bytes())
    return bad


def test_check_exit_codes_and_json_shape(
    cli: Callable[..., Any], torch_model: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, _ = torch_model
    code, out, _ = cli("check", str(folder), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["framework"] == "torch"
    assert report["image"] == "pytorch-cpu.2-4"
    code, out, _ = cli("check", str(_mnist_mar(torch_model, tmp_path)), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert "mar.wrong-filename" in [d["code"] for d in report["diagnostics"]]
    assert set(report["diagnostics"][0]) == {"code", "severity", "message", "hint", "path"}
    code, _, err = cli("check", str(tmp_path / "does-not-exist"))
    assert code == 2 and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.torchserve
def test_deploy_refuses_an_artifact_with_errors_and_force_shows_the_server_failing(
    sandbox: Sandbox, cli: Callable[..., Any], torch_model: tuple[Path, Any], tmp_path: Path
) -> None:
    sandbox.upload(_mnist_mar(torch_model, tmp_path), "s3://models/gate/1", progress=False)
    code, out, _ = cli("check", "s3://models/gate/1", "--format", "json")
    assert code == 1 and "mar.wrong-filename" in out
    code, _, err = cli("deploy", "s3://models/gate/1", "--image", "pytorch-cpu.2-4", "--endpoint", "gate")
    assert code == 1
    assert "ArtifactInvalid" in err and "mar.wrong-filename" in err
    assert sandbox.pods() == [] or all(p["deployedModel"] != "gate-gate-1" for p in sandbox.pods())
    code, _, err = cli("deploy", "s3://models/gate/1", "--image", "pytorch-cpu.2-4", "--endpoint", "gate", "--force")
    assert code == 1
    assert "Model not found in model store" in err or "model.mar" in err
