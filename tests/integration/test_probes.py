"""Readiness and liveness probes, as the kubelet runs them, on both pod kinds (TF Serving forked from the fork
server, TorchServe): a pod that stops answering is out of traffic, named with the reason in the DeployedModel's
status, and back when it answers again; one that stays silent is killed and restarted with back-off, the reason
in its status and in control-plane.log; and a pod busy with a long request never flaps."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.engine import Sandbox
from sandbox.process import wait_until
from sandbox.settings import Settings
from tests.integration.conftest import close
from tests.integration.test_pod_lifecycle import await_reason, deploy_one, running_pod, status_of

INSTANCES = [[1.0, 2.0, 3.0, 4.0]]
PROBES = {
    "probe_period": 0.2,
    "probe_timeout": 0.5,
    "readiness_failure_threshold": 1,
    "liveness_failure_threshold": 12,
}
"""Out of traffic at the first silence, killed after about 8 s of it: room to watch (and undo) the first."""


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("probes") / "home"
    sb = Sandbox(Settings(home=home, s3_port=0, gateway_port=0, restart_backoff=0.5, **PROBES))
    sb.up()
    try:
        yield sb
    finally:
        sb.down()


def control_plane_log(sb: Sandbox) -> str:
    return (sb.settings.log_dir / "control-plane.log").read_text()


def probes_of(sb: Sandbox, pod_name: str) -> dict[str, int]:
    return dict(next(p for p in sb.pods() if p["name"] == pod_name).get("probes") or {})


KINDS = {
    "tf": ("tf_model", "tf2-cpu.2-18", "/v1/models/default"),  # forked from the fork server: one process
    "torch": ("torch_model", "pytorch-cpu.2-4", "/ping"),  # TorchServe's launcher, its JVM and its workers
}


def deploy_kind(
    sb: Sandbox, request: pytest.FixtureRequest, kind: str, name: str
) -> tuple[str, dict[str, Any], str, Callable[[Any], Any]]:
    """Deploy the tiny model of pod kind ``kind``: its DeployedModel, its pod, its health route, its reference."""
    fixture, image, route = KINDS[kind]
    model, reference = request.getfixturevalue(fixture)
    dm, pod = deploy_one(sb, model, name, image)
    return dm, pod, route, reference


def signal_pod(pid: int, sig: signal.Signals) -> None:
    """Signal the pod's whole process group (the pod runs in a session of its own)."""
    assert os.getpgid(pid) == pid
    os.killpg(pid, sig)


@pytest.mark.parametrize("kind", KINDS)
def test_a_stopped_pod_is_out_of_traffic_until_it_answers_again(
    probed: Sandbox, kind: str, request: pytest.FixtureRequest, cli_for: Callable[..., Any]
) -> None:
    sb = probed
    dm, pod, route, reference = deploy_kind(sb, request, kind, f"stopped-{kind}")
    pid = pod["pid"]

    signal_pod(pid, signal.SIGSTOP)
    try:
        status = await_reason(sb, dm, "PodNotReady", timeout=30)
        reason = (
            f"readiness probe failed once: it did not answer {route} within 0.5s "
            f"(its process {pid} is stopped, as by SIGSTOP: `kill -CONT {pid}` resumes it)"
        )
        assert status["primaryCondition"]["message"] == (
            f"pod {pod['name']} is not ready: {reason}; 0/1 replicas ready (traffic goes only to ready replicas); "
            f"log {pod['log']}"
        )
        assert status["conditions"][0]["status"] == "False"
        [row] = status["replicas"]
        assert (row["state"], row["ready"], row["notReady"], row["pid"]) == ("Running", False, reason, pid)

        code, body = sb.predict(f"stopped-{kind}-ep", INSTANCES)  # at once: no request waits on the silent pod
        error = body["error"]
        assert code == 503 and error["reason"] == "endpoint.not-ready"
        assert f"DeployedModel {dm} is PodNotReady: pod {pod['name']} is not ready: {reason}" in error["message"]
        assert error["hint"].startswith(f"the pod log is {pod['log']}")
        _, out, _ = cli_for(sb)("status")
        assert f"pod/{pod['name']}" in out and "Running (not ready)" in out
    finally:
        signal_pod(pid, signal.SIGCONT)

    await_reason(sb, dm, "Ready", timeout=30)
    code, body = sb.predict(f"stopped-{kind}-ep", INSTANCES)
    assert code == 200 and close(body["predictions"], reference(INSTANCES), atol=1e-4)
    again = running_pod(sb, dm)
    assert (again["pid"], again["ready"], again["restartCount"]) == (pid, True, 0)  # back, not restarted
    log = control_plane_log(sb)
    assert f"pod {pod['name']} of DeployedModel default/{dm} is out of traffic: {reason}" in log
    assert f"pod {pod['name']} of DeployedModel default/{dm} is back in traffic" in log
    sb.delete("DeployedModel", dm)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pod_that_stays_silent_is_killed_and_restarted_with_the_reason(
    probed: Sandbox, kind: str, request: pytest.FixtureRequest
) -> None:
    sb = probed
    dm, pod, route, reference = deploy_kind(sb, request, kind, f"silent-{kind}")
    pid = pod["pid"]

    signal_pod(pid, signal.SIGSTOP)
    assert wait_until(lambda: status_of(sb, dm).get("restartCount") or None, timeout=60)

    status = await_reason(sb, dm, "Ready", timeout=180)
    silence = (
        f"liveness probe failed 12 times in a row: it did not answer {route} within 0.5s "
        f"(its process {pid} was stopped, as by SIGSTOP)"
    )
    last = status["lastTermination"]
    assert (last["pod"], last["reason"]) == (pod["name"], "LivenessProbeFailed")
    assert last["message"].startswith(f"{silence}; the control plane stopped it (killed by signal ")
    restarted = running_pod(sb, dm)
    assert restarted["name"] == pod["name"] and restarted["pid"] != pid and restarted["restartCount"] == 1
    code, body = sb.predict(f"silent-{kind}-ep", INSTANCES)
    assert code == 200 and close(body["predictions"], reference(INSTANCES), atol=1e-4)

    log = control_plane_log(sb)
    where = f"pod {pod['name']} of DeployedModel default/{dm}"
    assert f"{where}: {silence}; killing it (it is restarted with back-off)" in log
    assert f"-> PodRestarting: pod {pod['name']} was killed: {silence}; the control plane stopped it" in log
    sb.delete("DeployedModel", dm)


def busy_tf_model(folder: Path, started: Path, stop: Path) -> Path:
    """A SavedModel whose prediction writes ``started`` and then multiplies matrices until ``stop`` exists: a
    request that keeps the model server's cores busy for as long as the test wants; it answers ``2 * x``."""
    import tensorflow as tf

    def pattern(i: Any) -> Any:  # the stop path, made to depend on the loop counter so that it is asked every time
        return tf.strings.join([str(stop), tf.strings.substr(tf.strings.as_string(i), 0, 0)])

    class Busy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x: Any) -> Any:
            with tf.control_dependencies([tf.io.write_file(str(started), "started")]):
                _, product = tf.while_loop(
                    lambda i, m: tf.equal(tf.size(tf.io.matching_files(pattern(i))), 0),
                    lambda i, m: [i + 1, tf.matmul(m, m)],
                    [tf.constant(0), tf.eye(96)],
                )
            with tf.control_dependencies([product]):
                return {"outputs": tf.identity(x * 2.0)}

    module = Busy()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


STUCK_HANDLER = '''
import os
import time

from ts.torch_handler.base_handler import BaseHandler

STARTED, STOP = {started!r}, {stop!r}


class StuckHandler(BaseHandler):
    """The built-in handler, after waiting in the request until the test lets it go."""

    def handle(self, data, context):
        open(STARTED, "w").close()
        while not os.path.exists(STOP):
            time.sleep(0.02)
        return super().handle(data, context)
'''


def serve_one_long_request(sb: Sandbox, endpoint: str, pod_name: str, started: Path, stop: Path) -> tuple[int, Any]:
    """Predict once, and let the request end only after the pod has been probed five times while in it."""
    answer: dict[str, tuple[int, Any]] = {}
    request = threading.Thread(target=lambda: answer.update(it=sb.predict(endpoint, INSTANCES)))
    request.start()
    try:
        assert wait_until(lambda: started.exists() or None, timeout=60)
        before = sum(probes_of(sb, pod_name).values())
        assert wait_until(lambda: sum(probes_of(sb, pod_name).values()) >= before + 5 or None, timeout=60)
    finally:
        stop.touch()
        request.join(timeout=120)
    return answer["it"]


@pytest.mark.parametrize("kind", ["tf", "torch"])
def test_a_pod_busy_with_a_long_request_stays_in_traffic(probed: Sandbox, tmp_path: Path, kind: str) -> None:
    sb = probed
    started, stop = tmp_path / "started", tmp_path / "stop"
    if kind == "tf":
        artifact, image = busy_tf_model(tmp_path / "art", started, stop), "tf2-cpu.2-18"
        expected: Any = [[2 * v for v in row] for row in INSTANCES]
    else:
        import torch

        from tests.runtimes.artifacts import _linear, custom_handler

        (tmp_path / "scratch").mkdir()
        source = textwrap.dedent(STUCK_HANDLER).format(started=str(started), stop=str(stop))
        artifact, image = custom_handler(tmp_path / "art", tmp_path / "scratch", source), "pytorch-cpu.2-4"
        with torch.no_grad():  # the Linear(4->2) the archive holds, answered by the built-in handler
            expected = _linear()(torch.tensor(INSTANCES)).tolist()
    dm, pod = deploy_one(sb, artifact, f"busy-{kind}", image)

    code, body = serve_one_long_request(sb, f"busy-{kind}-ep", pod["name"], started, stop)

    assert code == 200, body
    assert close(body["predictions"], expected, atol=1e-4)
    counts = probes_of(sb, pod["name"])
    assert counts["failed"] == 0 and counts["answered"] + counts["busy"] >= 5, counts
    assert status_of(sb, dm)["primaryCondition"]["reason"] == "Ready"
    after = running_pod(sb, dm)
    assert (after["pid"], after["ready"], after["restartCount"]) == (pod["pid"], True, 0)
    assert f"pod {pod['name']} of DeployedModel default/{dm} is out of traffic" not in control_plane_log(sb)
    sb.delete("DeployedModel", dm)


def test_a_request_in_flight_when_the_liveness_probe_kills_its_pod_is_told_why(probed: Sandbox, tmp_path: Path) -> None:
    sb = probed
    started, stop = tmp_path / "started", tmp_path / "stop"
    dm, pod = deploy_one(sb, busy_tf_model(tmp_path / "art", started, stop), "inflight-tf", "tf2-cpu.2-18")
    answer: dict[str, tuple[int, Any]] = {}
    request = threading.Thread(target=lambda: answer.update(it=sb.predict("inflight-tf-ep", INSTANCES)))
    request.start()
    try:
        assert wait_until(lambda: started.exists() or None, timeout=60)  # the request is inside the model server
        signal_pod(pod["pid"], signal.SIGSTOP)
        request.join(timeout=120)
    finally:
        stop.touch()
    code, body = answer["it"]
    route = KINDS["tf"][2]
    assert code == 503 and body["error"]["reason"] == "predict.model-server-unreachable", body
    assert body["error"]["message"] == (
        f"pod {pod['name']} of DeployedModel {dm} did not answer: liveness probe failed 12 times in a row: it did "
        f"not answer {route} within 0.5s (its process {pod['pid']} was stopped, as by SIGSTOP), so the control "
        "plane killed it (it is restarted with back-off)"
    )
    await_reason(sb, dm, "Ready", timeout=180)
    sb.delete("DeployedModel", dm)
