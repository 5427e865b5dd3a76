"""Upload -> deploy -> predict on the compose backend: each DeployedModel replica is a container of its image."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.errors import DeployFailed
from sandbox.process import tree_cpu_seconds, wait_until
from sandbox.runtimes.base import PodInfo
from sandbox.runtimes.container import PULL_VARIABLE, pulls_allowed
from sandbox.runtimes.container_images import container_image
from sandbox.settings import Settings
from tests.compose.conftest import containers_of
from tests.integration.conftest import close
from tests.integration.test_bad_inputs import (  # noqa: F401  (the native tests, run here on containers)
    test_failed_rollout_keeps_the_previous_version_serving,
    test_missing_bucket_role_fails_with_the_fix_then_grant_makes_it_ready,
)
from tests.integration.test_pod_lifecycle import running_pod
from tests.integration.test_probes import busy_tf_model, probes_of

INSTANCES = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]]


@pytest.mark.parametrize(("model", "image"), [("tf_model", "tf2-cpu.2-18"), ("torch_model", "pytorch-cpu.2-4")])
def test_a_container_of_the_images_container_image_serves_the_frameworks_numbers(
    sandbox: Sandbox, docker_client: Any, request: pytest.FixtureRequest, model: str, image: str
) -> None:
    folder, reference = request.getfixturevalue(model)
    uri = f"s3://models/c-{model}/1"
    sandbox.upload(folder, uri, progress=False)
    deployment = sandbox.deploy(uri, image=image, endpoint=f"c-{model}".replace("_", "-"))

    status, body = sandbox.predict(deployment.endpoint, INSTANCES)
    assert status == 200, body
    assert close(body["predictions"], reference(INSTANCES))
    assert body["deployedModelId"] == deployment.deployed_model_id
    [container] = containers_of(docker_client, sandbox, deployment.deployed_model)
    assert container.status == "running" and container.image.tags == [container_image(image)]
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert [m["Destination"] for m in container.attrs["Mounts"] if m["RW"]] in ([], ["/home/model-server/worker/logs"])


def test_a_failing_rollout_shows_the_containers_own_log_and_removes_its_container(
    sandbox: Sandbox, docker_client: Any, tf_model: tuple[Path, Callable[[Any], Any]], tmp_path: Path
) -> None:
    folder, reference = tf_model
    sandbox.upload(folder, "s3://models/c-roll/1", progress=False)
    first = sandbox.deploy("s3://models/c-roll/1", image="tf2-cpu.2-18", endpoint="c-roll")
    [serving] = containers_of(docker_client, sandbox, first.deployed_model)
    broken = tmp_path / "broken"
    (broken / "variables").mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    sandbox.upload(broken, "s3://models/c-roll/2", progress=False)

    with pytest.raises(DeployFailed) as failure:
        sandbox.deploy("s3://models/c-roll/2", image="tf2-cpu.2-18", endpoint="c-roll", force=True)

    details = failure.value.details
    assert f"started from image {container_image('tf2-cpu.2-18')}" in details  # the container's own output
    assert "saved_model.pb" in failure.value.message + details
    assert containers_of(docker_client, sandbox, failure.value.deployed_model) == []  # type: ignore[attr-defined]
    status, body = sandbox.predict("c-roll", INSTANCES)
    assert status == 200 and body["deployedModelId"] == first.deployed_model_id
    assert close(body["predictions"], reference(INSTANCES))
    serving.reload()
    assert serving.status == "running"  # the old version's container was never touched


@pytest.mark.parametrize("image", ["tf2-cpu.2-14", "tf2-cpu.2-6"])
def test_an_image_the_engine_lacks_fails_with_the_variable_that_fixes_it(sandbox: Sandbox, image: str) -> None:
    if pulls_allowed():
        pytest.skip(f"this engine may pull; the test needs {PULL_VARIABLE}=never")
    endpoint = f"c-missing-{image[-4:].replace('.', '')}"
    with pytest.raises(DeployFailed) as failure:
        sandbox.deploy("s3://models/c-tf_model/1", image=image, endpoint=endpoint, force=True)  # past the checker
    assert failure.value.code == "deploy.ErrImagePull"
    assert container_image(image) in failure.value.message
    assert f"GDC_SANDBOX_IMAGE_{image.upper().replace('-', '_').replace('.', '_')}" in failure.value.hint


def probed_compose(home: Path, **values: Any) -> Settings:
    """A private compose sandbox's settings, its pods probed every 0.2 s with 0.5 s to answer."""
    return Settings(home=home, s3_port=0, gateway_port=0, backend="compose", probe_period=0.2, probe_timeout=0.5, **values)


def test_a_container_that_stops_answering_is_killed_by_its_liveness_probe_and_restarted(
    tmp_path: Path, docker_client: Any, tf_model: tuple[Path, Callable[[Any], Any]]
) -> None:
    """The probes reach a container like a local pod (host network); its restart, under the same pod name, replaces
    the container that the kill left behind."""
    settings = probed_compose(tmp_path / "home", liveness_failure_threshold=5, restart_backoff=0.5)
    sb = Sandbox(settings)
    sb.up()
    try:
        folder, reference = tf_model
        sb.upload(folder, "s3://models/c-silent/1", progress=False)
        dm = sb.deploy("s3://models/c-silent/1", image="tf2-cpu.2-18", endpoint="c-silent").deployed_model
        [container] = containers_of(docker_client, sb, dm)
        init = psutil.Process(container.attrs["State"]["Pid"])
        for server in init.children(recursive=True):  # the model server, frozen: alive, and silent
            server.suspend()

        assert wait_until(lambda: sb.get("DeployedModel", dm)[0]["status"].get("restartCount") or None, timeout=60)
        status = sb.wait_ready("DeployedModel", dm, settings.project, timeout=180)["status"]
        assert status["lastTermination"]["reason"] == "LivenessProbeFailed"
        assert status["lastTermination"]["message"].startswith(
            "liveness probe failed 5 times in a row: it did not answer /v1/models/default within 0.5s"
        )
        code, body = sb.predict("c-silent", INSTANCES)
        assert code == 200 and close(body["predictions"], reference(INSTANCES))
        [restarted] = containers_of(docker_client, sb, dm)
        assert restarted.id != container.id and restarted.status == "running"
        # the kill gave the container's own process the time to have it stopped (in the pods' grace) and removed
        assert "left by an earlier run of this pod" not in Path(status["lastTermination"]["log"]).read_text()
    finally:
        sb.down()


def pod_info(sb: Sandbox, deployed_model: str) -> PodInfo:
    """The control plane's record of the DeployedModel's only pod."""
    table = json.loads((sb.settings.state_dir / "pods" / f"{sb.settings.project}__{deployed_model}.json").read_text())
    [pod] = table["pods"]
    return PodInfo.from_dict(pod)


def test_a_container_busy_with_a_long_request_stays_in_traffic_its_cpu_measured_in_the_container(
    tmp_path: Path, docker_client: Any
) -> None:
    """The probes' busy-pod exemption measures the container's processes (the engine's children, not the pod
    process's), as the autoscaler does."""
    settings = probed_compose(tmp_path / "home", readiness_failure_threshold=1, liveness_failure_threshold=12)
    started, stop = Path("/tmp/started"), Path("/tmp/stop")  # inside the container
    sb = Sandbox(settings)
    sb.up()
    try:
        sb.upload(busy_tf_model(tmp_path / "art", started, stop), "s3://models/c-busy/1", progress=False)
        dm = sb.deploy("s3://models/c-busy/1", image="tf2-cpu.2-18", endpoint="c-busy").deployed_model
        [container] = containers_of(docker_client, sb, dm)
        pod, info = running_pod(sb, dm), pod_info(sb, dm)
        assert info.container_pid == container.attrs["State"]["Pid"]

        answer: dict[str, tuple[int, Any]] = {}
        request = threading.Thread(target=lambda: answer.update(it=sb.predict("c-busy", INSTANCES)))
        request.start()
        try:
            assert wait_until(lambda: container.exec_run(["test", "-e", str(started)]).exit_code == 0, timeout=60)
            cpu = (info.cpu_seconds(), tree_cpu_seconds(info.process.pid))
            before = sum(probes_of(sb, pod["name"]).values())
            assert wait_until(lambda: sum(probes_of(sb, pod["name"]).values()) >= before + 5, timeout=60)
            used = (info.cpu_seconds() - cpu[0], tree_cpu_seconds(info.process.pid) - cpu[1])
        finally:
            container.exec_run(["touch", str(stop)])
            request.join(timeout=120)
        assert used[0] > max(0.05, used[1]), used  # the work is the container's, not its standing process's

        code, body = answer["it"]
        assert code == 200 and close(body["predictions"], [[2 * v for v in row] for row in INSTANCES]), body
        counts = probes_of(sb, pod["name"])
        assert counts["failed"] == 0 and counts["answered"] + counts["busy"] >= 5, counts
        after = running_pod(sb, dm)
        assert (after["pid"], after["ready"], after["restartCount"]) == (pod["pid"], True, 0)
    finally:
        sb.down()
