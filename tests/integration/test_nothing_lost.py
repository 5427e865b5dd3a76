"""Nothing that was serving is lost: after `down`/`up` or a control plane that died, exactly what served before
serves again (same generation, same bytes), a spec that had failed is shown failed again, and a crash in
reconcile leaves no pod and no half-written state behind."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.errors import DeployFailed
from sandbox.process import ProcessRecord, wait_until
from sandbox.runtimes.forkserver import is_standby
from tests.integration.conftest import close

INSTANCES = [[1.0, 2.0, 3.0, 4.0]]
URI = "s3://models/kept/1"


def serving_again(sb: Sandbox, name: str, timeout: float = 180) -> dict[str, Any]:
    """The DeployedModel's status once a pod of it runs again after a restart."""

    def running() -> dict[str, Any] | None:
        status = sb.get("DeployedModel", name)[0].get("status") or {}
        return status if any(r.get("state") == "Running" for r in status.get("replicas", [])) else None

    found = wait_until(running, timeout=timeout)
    assert found, f"{name} does not serve again: {sb.get('DeployedModel', name)[0].get('status')}"
    return found


def assert_serves_generation_1(sb: Sandbox, dm: str, reference: Callable[[Any], Any]) -> None:
    status = serving_again(sb, dm)
    assert status["servingGeneration"] == 1
    cond = status["primaryCondition"]
    assert cond["reason"] == "ArtifactInvalid" and cond["message"].endswith("(generation 1 keeps serving)")
    assert sb.get("DeployedModel", dm)[0]["metadata"]["generation"] == 2
    code, body = sb.predict("kept-ep", INSTANCES)
    assert code == 200 and close(body["predictions"], reference(INSTANCES))  # the bytes it served, not the bucket's


def test_after_down_up_or_a_dead_control_plane_what_served_serves_again(
    own_sandbox: Sandbox,
    tf_model: tuple[Path, Callable[[Any], Any]],
    other_tf_model: tuple[Path, Callable[[Any], Any]],
    cli_for: Callable[..., Any],
) -> None:
    sb, cli = own_sandbox, cli_for(own_sandbox)
    sb.upload(tf_model[0], URI, progress=False)
    dm = sb.deploy(URI, "tf2-cpu.2-18", "kept-ep").deployed_model
    with pytest.raises(DeployFailed) as info:  # generation 2, refused: generation 1 keeps serving
        sb.deploy(URI, "pytorch-cpu.2-4", "kept-ep")
    assert info.value.code == "deploy.ArtifactInvalid"
    sb.upload(other_tf_model[0], URI, overwrite=True, progress=False)  # the bucket changes under the served copy

    pod = sb.get("DeployedModel", dm)[0]["status"]["replicas"][0]["name"]
    assert sb.down()[:2] == ["control-plane", f"pod/{pod}"]
    code, out, _ = cli("up")
    assert code == 0 and "restoring:      1 DeployedModel(s) in the background" in out
    _, out, _ = cli("status")
    if sb.restore_progress()["done"] == 0:  # loading a TF model server takes seconds: still under way
        assert "restoring DeployedModels after a restart: 0/1 done" in out
    assert_serves_generation_1(sb, dm, tf_model[1])
    assert wait_until(lambda: sb.restore_progress().get("done") == 1, timeout=30)
    assert sb.restore_progress() == {"total": 1, "done": 1, "failed": []}

    control = sb.running().control
    os.kill(control.pid, signal.SIGKILL)  # the control plane dies; its pod is left running, unowned
    assert wait_until(lambda: not control.is_alive() or None, timeout=10)
    _, started = sb.up()
    assert started
    assert_serves_generation_1(sb, dm, tf_model[1])


def test_a_crash_in_reconcile_leaves_no_pod_and_no_half_written_state(
    own_sandbox: Sandbox, tf_model: tuple[Path, Callable[[Any], Any]]
) -> None:
    """The Endpoint cannot be written (a file is where its folder goes): the rollout is undone whole."""
    sb = own_sandbox
    sb.upload(tf_model[0], "s3://models/crash/1", progress=False)
    blocker = sb.settings.state_dir / "resources" / "Endpoint"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    dm = sb.deploy("s3://models/crash/1", "tf2-cpu.2-18", "crash-ep", wait=False).deployed_model

    def failed() -> dict[str, Any] | None:
        status = sb.get("DeployedModel", dm)[0].get("status") or {}
        return status if (status.get("primaryCondition") or {}).get("reason") == "InternalError" else None

    status = wait_until(failed, timeout=180)
    assert status, sb.get("DeployedModel", dm)[0].get("status")
    assert "reconcile crashed: NotADirectoryError" in status["primaryCondition"]["message"]
    assert "servingGeneration" not in status and not status.get("replicas")
    control = psutil.Process(sb.running().control.pid)
    state = sb.settings.state_dir
    standby = {r.pid for r in map(ProcessRecord.load, (state / "pods").rglob("*.json")) if r and is_standby(r.name)}
    warm = [p for c in control.children() if c.pid in standby for p in (c, *c.children(recursive=True))]  # not pods
    running = [c for c in control.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
    assert [c for c in running if c not in warm] == []  # no model server is left
    pod_records = [r for r in (state / "pods").rglob("*.json") if not is_standby(r.stem)]
    assert not list((state / "serving").glob("*.json")) and not pod_records
    assert not list((sb.settings.run_dir / "artifacts" / "default" / dm).glob("gen-*"))  # no staged copy
    assert sb.get("Endpoint") == []

    blocker.unlink()  # the disk is fixed: deploying again works
    sb.deploy("s3://models/crash/1", "tf2-cpu.2-18", "crash-ep")
    code, body = sb.predict("crash-ep", INSTANCES)
    assert code == 200 and close(body["predictions"], tf_model[1](INSTANCES))
    record = json.loads(next((state / "serving").glob("*.json")).read_text())
    assert record["generation"] == 1 and Path(record["artifact_dir"]).is_dir()
