"""TF pods are forked from the control plane's warm TF parent: each pod is its own process, in its own session,
folder and log, and the parent stays for the next deploy."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.process import wait_until
from sandbox.settings import Settings
from tests.integration.conftest import TF_WARM_ONLY

pytestmark = pytest.mark.tfserving


def forkservers(sandbox: Sandbox) -> set[int]:
    control = psutil.Process(sandbox.running().control.pid)
    return {p.pid for p in control.children() if "sandbox.runtimes.tfserving.forkserver" in _cmdline(p)}


def _cmdline(process: psutil.Process) -> str:
    """The command line, or '' for a child that has ended (a zombie not reaped yet has none to read)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def running(pid: int) -> bool:
    """Alive and not a zombie (an ended child its new parent has not reaped yet)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_tf_pods_are_forked_from_the_warm_parent(sandbox: Sandbox, tf_model: tuple[Path, Any]) -> None:
    folder, _ = tf_model
    parents = wait_until(lambda: forkservers(sandbox), timeout=30)
    assert parents, "the control plane keeps a TF 2.18 parent warm (GDC_SANDBOX_WARM_IMAGES)"
    pods = []
    for i in (1, 2):
        sandbox.upload(folder, f"s3://models/fork-tf{i}/1", progress=False)
        deployment = sandbox.deploy(f"s3://models/fork-tf{i}/1", "tf2-cpu.2-18", f"fork-tf{i}")
        pod = next(p for p in sandbox.pods() if p["deployedModel"] == deployment.deployed_model)
        process = psutil.Process(pod["pid"])
        assert process.ppid() in parents and os.getsid(pod["pid"]) == pod["pid"]  # forked, in its own session
        assert process.cwd().endswith(pod["name"])  # the pod's own folder
        log = Path(pod["log"]).read_text()
        assert "Successfully loaded servable version {name: default version: 1}" in log
        status, answer = sandbox.predict(f"fork-tf{i}", [[1.0, 2.0, 3.0, 4.0]])
        assert status == 200 and len(answer["predictions"][0]) == 2
        pods.append((deployment.deployed_model, pod["pid"]))
    assert pods[0][1] != pods[1][1] and forkservers(sandbox) == parents  # one parent, one process per pod
    for name, pid in pods:
        sandbox.delete("DeployedModel", name)
        assert wait_until(lambda pid=pid: not running(pid), timeout=30)


def test_down_stops_the_fork_server_also_after_the_control_plane_was_killed(tmp_path: Path) -> None:
    sb = Sandbox(Settings(home=tmp_path / "home", s3_port=0, gateway_port=0, warm_images=TF_WARM_ONLY))
    try:
        for kill_control_plane in (False, True):
            sb.up()
            parents = wait_until(lambda: forkservers(sb), timeout=30)
            assert parents
            if kill_control_plane:
                os.kill(sb.running().control.pid, signal.SIGKILL)
            sb.down()
            assert not [pid for pid in parents if running(pid)], f"after kill -9: {kill_control_plane}"
    finally:
        sb.down()
