"""A TF deploy claims the control plane's warm model server: the pod is that process, serving from its own
folder and log, and the next standby is started for the deploy after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.process import wait_until

pytestmark = pytest.mark.tfserving


def standbys(sandbox: Sandbox) -> set[int]:
    control = psutil.Process(sandbox.running().control.pid)
    return {p.pid for p in control.children() if "sandbox.runtimes.tfserving.standby" in " ".join(p.cmdline())}


def test_a_deploy_claims_the_warm_server_and_a_new_one_waits(sandbox: Sandbox, tf_model: tuple[Path, Any]) -> None:
    folder, _ = tf_model
    sandbox.upload(folder, "s3://models/standby-tf/1", progress=False)
    waiting = wait_until(lambda: standbys(sandbox), timeout=30)
    assert waiting, "the control plane keeps a TF 2.18 server warm (GDC_SANDBOX_WARM_IMAGES)"
    deployment = sandbox.deploy("s3://models/standby-tf/1", "tf2-cpu.2-18", "standby-tf")
    pod = next(p for p in sandbox.pods() if p["deployedModel"] == deployment.deployed_model)
    assert pod["pid"] in waiting
    process = psutil.Process(pod["pid"])
    assert process.cwd().endswith(pod["name"])  # the pod's own folder
    log = Path(pod["log"]).read_text()
    assert "Successfully loaded servable version {name: default version: 1}" in log
    assert "Exporting HTTP/REST API" in log
    status, answer = sandbox.predict("standby-tf", [[1.0, 2.0, 3.0, 4.0]])
    assert status == 200 and len(answer["predictions"][0]) == 2
    assert wait_until(lambda: standbys(sandbox) - {pod["pid"]}, timeout=30), "a new standby waits for the next deploy"
    sandbox.delete("DeployedModel", deployment.deployed_model)
