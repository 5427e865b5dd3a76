"""Pods behave like Kubernetes pods: a pod that dies is noticed, taken out of traffic, restarted with back-off
(CrashLoopBackOff when it keeps dying) and reaped; `down` names every pod it stopped."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.errors import DeployFailed
from sandbox.process import wait_until
from sandbox.settings import Settings
from tests.integration.conftest import TF_WARM_ONLY, close

INSTANCES = [[1.0, 2.0, 3.0, 4.0]]
HUNG_POD_TIMEOUT = 6.0
"""Seconds the gateway waits for a pod (``deploy_timeout``); also what a pod here has to load its model."""


@pytest.fixture(scope="module")
def pod_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A private sandbox whose pods these tests kill; restarts wait 3 s, long enough to watch the dead state. Probes
    are off: a pod that hangs here is met only by the gateway, which waits ``deploy_timeout`` for it."""
    settings = Settings(
        home=tmp_path_factory.mktemp("pods") / "home",
        s3_port=0,
        gateway_port=0,
        restart_backoff=3,
        probe_period=0,
        deploy_timeout=HUNG_POD_TIMEOUT,
        warm_images=TF_WARM_ONLY,
    )
    sb = Sandbox(settings)
    sb.up()
    try:
        yield sb
    finally:
        sb.down()


def status_of(sb: Sandbox, name: str) -> dict[str, Any]:
    return dict(sb.get("DeployedModel", name)[0].get("status") or {})


def await_reason(sb: Sandbox, name: str, reason: str, timeout: float = 120) -> dict[str, Any]:
    """The DeployedModel's status once its condition's reason is ``reason`` (checked every 0.1 s)."""

    def reached() -> dict[str, Any] | None:
        status = status_of(sb, name)
        return status if (status.get("primaryCondition") or {}).get("reason") == reason else None

    found = wait_until(reached, timeout=timeout)
    assert found, f"{name} never reached {reason}: {status_of(sb, name).get('primaryCondition')}"
    return found


def running_pod(sb: Sandbox, name: str) -> dict[str, Any]:
    pods = [p for p in sb.pods() if p["deployedModel"] == name and p["state"] == "Running"]
    assert len(pods) == 1, sb.pods()
    return pods[0]


def deploy_one(sb: Sandbox, artifact: Path, name: str, image: str = "tf2-cpu.2-18") -> tuple[str, dict[str, Any]]:
    """Upload ``artifact`` as s3://models/NAME/1, deploy it to endpoint NAME-ep; its DeployedModel and its pod."""
    sb.upload(artifact, f"s3://models/{name}/1", progress=False)
    dm = sb.deploy(f"s3://models/{name}/1", image, f"{name}-ep").deployed_model
    return dm, running_pod(sb, dm)


def zombies_of(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children() if c.status() == psutil.STATUS_ZOMBIE]


def test_a_killed_pod_is_noticed_taken_out_of_traffic_restarted_and_reaped(
    pod_sandbox: Sandbox, tf_model: tuple[Path, Callable[[Any], Any]]
) -> None:
    sb = pod_sandbox
    dm, pod = deploy_one(sb, tf_model[0], "killed")

    os.kill(pod["pid"], signal.SIGKILL)

    status = await_reason(sb, dm, "PodRestarting", timeout=10)
    message = status["primaryCondition"]["message"]
    assert f"pod {pod['name']} died: killed by signal 9 (SIGKILL)" in message
    assert "0/1 replicas ready" in message and pod["log"] in message
    assert "last lines of its log:" in message  # the model server's own last words
    assert status["lastTermination"]["signal"] == 9 and status["lastTermination"]["pod"] == pod["name"]
    assert status["restartCount"] == 1

    code, body = sb.predict("killed-ep", INSTANCES)  # no ready replica: the sandbox says why, in its words
    error = body["error"]
    assert code == 503 and error["status"] == "UNAVAILABLE" and error["reason"] == "endpoint.not-ready"
    assert f"DeployedModel {dm} is PodRestarting: pod {pod['name']} died" in error["message"]
    assert pod["log"] in error["hint"]
    assert "HTTPConnectionPool" not in error["message"] + error["hint"]
    assert not zombies_of(sb.running().control.pid)  # the watcher reaped it

    # `deploy` again while the pod restarts: it waits, and says ready only once a pod answers.
    again = sb.deploy("s3://models/killed/1", "tf2-cpu.2-18", "killed-ep")
    code, body = sb.predict("killed-ep", INSTANCES)
    assert code == 200 and close(body["predictions"], tf_model[1](INSTANCES))
    assert again.deployed_model == dm
    restarted = running_pod(sb, dm)
    assert restarted["name"] == pod["name"] and restarted["pid"] != pod["pid"] and restarted["restartCount"] == 1
    assert status_of(sb, dm)["primaryCondition"]["reason"] == "Ready"

    sb.delete("DeployedModel", dm)  # its pod is stopped, and reaped: no <defunct> child is left
    control = sb.running().control.pid
    assert wait_until(lambda: not psutil.pid_exists(restarted["pid"]) or None, timeout=30)
    assert zombies_of(control) == []


def ended(process: psutil.Process) -> bool:
    """Gone and reaped: not even a ``<defunct>`` entry left."""
    return not process.is_running()  # psutil counts a zombie as running


def test_the_tees_keeping_a_torchserve_workers_output_are_reaped_by_the_pod_when_the_worker_ends(
    sandbox: Sandbox, torch_model: tuple[Path, Callable[[Any], Any]]
) -> None:
    """Each TorchServe worker (and each run of its metrics collector) writes through two ``tee`` processes that
    outlive it: the pod's first process adopts and reaps them, not a PID 1 that may never do (``[tee] <defunct>``)."""
    dm, pod = deploy_one(sandbox, torch_model[0], "tees", "pytorch-cpu.2-4")
    tees = [p for p in psutil.Process(pod["pid"]).children(recursive=True) if p.name() == "tee"]
    [worker] = {t.parent() for t in tees}  # the process the frontend knows as its worker: bash became it
    assert len(tees) == 2 and worker is not None
    for tee in tees:
        tee.suspend()  # alive until the test has seen who adopted them
    try:
        worker.kill()
        assert wait_until(lambda: all(t.ppid() != worker.pid for t in tees), timeout=30)
        assert [t.ppid() for t in tees] == [pod["pid"], pod["pid"]]  # the pod's, not PID 1's
    finally:
        for tee in tees:
            tee.resume()
    assert wait_until(lambda: all(ended(t) for t in tees), timeout=60), [(t.pid, t.status()) for t in tees]
    sandbox.delete("DeployedModel", dm)


def test_a_pod_that_does_not_answer_gets_the_sandboxs_own_503_and_serves_again_once_resumed(
    pod_sandbox: Sandbox, tf_model: tuple[Path, Callable[[Any], Any]]
) -> None:
    sb = pod_sandbox
    dm, pod = deploy_one(sb, tf_model[0], "hung")
    pid = pod["pid"]

    os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing: a hung model server
    try:
        code, body = sb.predict("hung-ep", INSTANCES)
    finally:
        os.kill(pid, signal.SIGCONT)

    error = body["error"]
    assert code == 503 and error["status"] == "UNAVAILABLE" and error["reason"] == "predict.model-server-unreachable"
    assert error["message"] == (
        f"pod {pod['name']} of DeployedModel {dm} did not answer within {HUNG_POD_TIMEOUT:g}s "
        f"(its process {pid} is stopped, as by SIGSTOP: `kill -CONT {pid}` resumes it)"
    )
    assert error["hint"].startswith(f"its log is {pod['log']}; probes are off (GDC_SANDBOX_PROBE_PERIOD=0)")

    code, body = sb.predict("hung-ep", INSTANCES)  # resumed: the same pod serves again
    assert code == 200 and close(body["predictions"], tf_model[1](INSTANCES))
    assert running_pod(sb, dm)["pid"] == pid and status_of(sb, dm)["primaryCondition"]["reason"] == "Ready"
    sb.delete("DeployedModel", dm)


def test_traffic_goes_only_to_the_ready_replicas(pod_sandbox: Sandbox, tf_model: tuple[Path, Any]) -> None:
    sb = pod_sandbox
    sb.upload(tf_model[0], "s3://models/two/1", progress=False)
    dm = sb.deploy("s3://models/two/1", "tf2-cpu.2-18", "two-ep", replicas=2).deployed_model
    victim = next(p for p in sb.pods() if p["deployedModel"] == dm)
    staged = sb.settings.run_dir / "artifacts" / "default" / dm / "gen-1"
    (staged / "saved_model.pb").unlink()  # the killed replica cannot come back; the other loaded its model already

    os.kill(victim["pid"], signal.SIGKILL)

    status = await_reason(sb, dm, "CrashLoopBackOff")
    assert "1/2 replicas ready" in status["primaryCondition"]["message"]
    answers = [sb.predict("two-ep", INSTANCES)[0] for _ in range(20)]
    assert answers == [200] * 20  # all to the replica that runs
    assert sorted(p["state"] for p in sb.pods() if p["deployedModel"] == dm) == ["CrashLoopBackOff", "Running"]
    sb.delete("DeployedModel", dm)


def test_a_pod_that_keeps_dying_ends_in_crash_loop_back_off_with_its_last_error(
    pod_sandbox: Sandbox, tf_model: tuple[Path, Any], cli_for: Callable[..., Any]
) -> None:
    sb = pod_sandbox
    sb.upload(tf_model[0], "s3://models/crashing/1", progress=False)
    dm = sb.deploy("s3://models/crashing/1", "tf2-cpu.2-18", "crashing-ep").deployed_model
    pod = running_pod(sb, dm)
    staged = sb.settings.run_dir / "artifacts" / "default" / dm / "gen-1"
    (staged / "saved_model.pb").unlink()  # the restarted model server will find no model to load

    os.kill(pod["pid"], signal.SIGKILL)

    status = await_reason(sb, dm, "CrashLoopBackOff")
    message = status["primaryCondition"]["message"]
    assert f"pod {pod['name']} keeps dying: restart failed: " in message
    assert "restart 2 in 6s" in message  # back-off doubles: 3 s, then 6 s
    assert status["restartCount"] == 2 and status["lastTermination"]["message"].startswith("restart failed: ")
    assert [r["state"] for r in status["replicas"]] == ["CrashLoopBackOff"]

    with pytest.raises(DeployFailed) as info:  # deploy never says ready for it
        sb.deploy("s3://models/crashing/1", "tf2-cpu.2-18", "crashing-ep")
    assert "CrashLoopBackOff" in info.value.message
    code, out, _ = cli_for(sb)("status")
    assert f"pod/{pod['name']}" in out and "CrashLoopBackOff" in out
    sb.delete("DeployedModel", dm)


def test_down_stops_every_pod_and_names_each(tmp_path: Path, tf_model: tuple[Path, Any]) -> None:
    sb = Sandbox(Settings(home=tmp_path / "home", s3_port=0, gateway_port=0, warm_images=TF_WARM_ONLY))
    try:
        sb.up()
        sb.upload(tf_model[0], "s3://models/many/1", progress=False)
        sb.deploy("s3://models/many/1", "tf2-cpu.2-18", "many-a", replicas=2)
        sb.deploy("s3://models/many/1", "tf2-cpu.2-18", "many-b")
        pods = sb.pods()
        assert len(pods) == 3
        stopped = sb.down()
    finally:
        sb.down()
    assert stopped[0] == "control-plane" and stopped[-1] == "s3"
    assert sorted(stopped[1:-1]) == sorted(f"pod/{p['name']}" for p in pods)
    assert not any(psutil.pid_exists(p["pid"]) and psutil.Process(p["pid"]).status() != "zombie" for p in pods)
