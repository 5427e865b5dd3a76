"""up / status / down: idempotent start, crash visibility, and stopping exactly what was started."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.engine import Sandbox
from sandbox.errors import PortInUse, SandboxNotRunning
from sandbox.settings import Settings


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A second, short-lived sandbox (the session one must not be disturbed)."""
    sb = Sandbox(Settings(home=tmp_path / "home", s3_port=0, gateway_port=0, warm_images="none"))
    yield sb
    sb.down()


def test_up_is_idempotent_and_down_stops_exactly_its_processes(own_sandbox: Sandbox) -> None:
    state, started = own_sandbox.up()
    assert started
    again, started_again = own_sandbox.up()
    assert not started_again
    assert (again.s3.pid, again.control.pid) == (state.s3.pid, state.control.pid)
    assert {c.name: c.state for c in own_sandbox.stack.status()} == {"s3": "running", "control-plane": "running"}
    assert (own_sandbox.settings.home / "credentials.env").read_text().count("AWS_") == 5
    stopped = own_sandbox.down()
    assert stopped == ["control-plane", "s3"]
    assert not state.s3.is_alive() and not state.control.is_alive()
    with pytest.raises(SandboxNotRunning):
        own_sandbox.running()


def test_a_crashed_component_shows_as_crashed(own_sandbox: Sandbox) -> None:
    state, _ = own_sandbox.up()
    os.kill(state.s3.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while state.s3.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    status = {c.name: c.state for c in own_sandbox.stack.status()}
    assert status == {"s3": "crashed", "control-plane": "running"}
    # `up` repairs it: the half-dead stack is stopped and a fresh one started.
    new_state, started = own_sandbox.up()
    assert started and new_state.s3.pid != state.s3.pid
    assert not state.control.is_alive()


@pytest.mark.parametrize("taken", ["s3_port", "gateway_port"])
def test_up_refuses_a_port_another_program_listens_on(tmp_path: Path, taken: str) -> None:
    """Another server on 9000 or 8080 must not pass for the sandbox's own (it would answer the health probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        sb = Sandbox(Settings(home=tmp_path / "home", **{"s3_port": 0, "gateway_port": 0, taken: port}))
        with pytest.raises(PortInUse) as info:
            sb.up()
    err = info.value
    assert err.code == "startup.port-in-use"
    assert f"127.0.0.1:{port} is already in use by PID {os.getpid()}" in err.message
    assert ("GDC_SANDBOX_S3_PORT" if taken == "s3_port" else "GDC_SANDBOX_GATEWAY_PORT") in err.hint
    assert sb.stack.status() == []  # nothing was started, nothing is left running
    assert sb.down() == []


def test_status_of_a_home_that_never_ran(tmp_path: Path) -> None:
    sb = Sandbox(Settings(home=tmp_path / "never"))
    assert sb.stack.status() == []
    assert sb.down() == []


def test_down_while_a_pod_is_still_loading_leaves_no_model_server(
    own_sandbox: Sandbox, torch_model: tuple[Path, object]
) -> None:
    from sandbox.process import ProcessRecord

    own_sandbox.up()
    own_sandbox.upload(torch_model[0], "s3://models/loading/1", progress=False)
    own_sandbox.deploy("s3://models/loading/1", "pytorch-cpu.2-4", "loading-ep", wait=False)
    spawning = own_sandbox.settings.state_dir / "pods" / "spawning"
    deadline = time.monotonic() + 30
    records: list[ProcessRecord] = []
    while not records:  # TorchServe takes seconds to load: catch it between start and ready
        assert time.monotonic() < deadline, "the pod never started"
        records = [r for r in map(ProcessRecord.load, spawning.glob("*.json")) if r is not None]
        time.sleep(0.02)

    own_sandbox.down()

    assert not any(r.is_alive() for r in records), records
    assert not list(spawning.glob("*.json"))
    assert all(r.scratch_dir for r in records)  # the pod's temp folder (TorchServe's sockets)
    assert not [r.scratch_dir for r in records if Path(r.scratch_dir).exists()]


def test_down_right_after_a_delete_stops_the_pod_and_removes_its_temp_folder(
    own_sandbox: Sandbox, torch_model: tuple[Path, object]
) -> None:
    """The delete's reconcile is still stopping the pod when `down` ends the control plane."""
    from sandbox.runtimes.base import PodInfo

    own_sandbox.up()
    own_sandbox.upload(torch_model[0], "s3://models/deleted/1", progress=False)
    own_sandbox.deploy("s3://models/deleted/1", "pytorch-cpu.2-4", "deleted-ep")
    tables = list((own_sandbox.settings.state_dir / "pods").glob("*.json"))
    pods = [PodInfo.from_dict(p) for table in tables for p in json.loads(table.read_text())["pods"]]
    assert len(pods) == 1 and pods[0].process.is_alive() and Path(pods[0].process.scratch_dir).is_dir()

    own_sandbox.delete("DeployedModel", own_sandbox.pods()[0]["deployedModel"])
    own_sandbox.down()

    assert not pods[0].process.is_alive()
    assert not Path(pods[0].process.scratch_dir).exists()
