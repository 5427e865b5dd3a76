"""Autoscaling with real model servers: loopback load drives a pool from 1 to 3 replicas and back to 1.

The load is bounded (a few threads, at most ``MAX_REQUESTS`` requests, stopped as soon as the pool has
scaled); every wait is for an event (the status the autoscaler writes) with a timeout, never a sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml

from sandbox.engine import Sandbox
from sandbox.settings import Settings
from tests.integration.conftest import TF_WARM_ONLY, close

pytestmark = [pytest.mark.slow, pytest.mark.tfserving]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gdc"
MAX_REQUESTS = 20_000
THREADS = 4


@pytest.fixture
def scaling_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A private sandbox whose autoscaler measures every second and scales down after 3 quiet seconds; its pods
    are probed every half second and out of traffic at the first failed probe, so that a pod under load that
    flapped would show."""
    settings = Settings(
        home=tmp_path / "scaling",
        s3_port=0,
        gateway_port=0,
        autoscale_interval=1.0,
        scale_down_delay=3.0,
        probe_period=0.5,
        readiness_failure_threshold=1,
        warm_images=TF_WARM_ONLY,
    )
    sb = Sandbox(settings)
    sb.up()
    yield sb
    sb.down()


class Load:
    """Loopback requests from a few threads until stopped or ``MAX_REQUESTS`` have been sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            with self._lock:
                if self.sent >= MAX_REQUESTS:
                    return
                self.sent += 1
            try:
                ok = session.post(self.url, json={"instances": [[1.0, 2.0, 3.0, 4.0]] * 32}, timeout=30).ok
            except requests.RequestException:
                ok = False
            if not ok:
                with self._lock:
                    self.failed += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _status(sb: Sandbox, name: str) -> dict[str, Any]:
    return sb.get("DeployedModel", name)[0]["status"]


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def test_load_above_cpu_target_adds_replicas_up_to_max_and_idle_removes_them(
    scaling_sandbox: Sandbox, tf_model: tuple[Path, Callable[[Any], Any]]
) -> None:
    sb = scaling_sandbox
    folder, reference = tf_model
    sb.upload(folder, "s3://models/my-model/1", progress=False)
    pool = yaml.safe_load((EXAMPLES / "resource-pool.yaml").read_text())
    # A low target, so that a tiny model's load crosses it on any machine.
    pool["spec"]["dedicatedResources"]["autoscaling"].update(minReplica=1, maxReplica=3, cpuTarget=2)
    documents = [pool, *(yaml.safe_load((EXAMPLES / f).read_text()) for f in ("deployed-model.yaml", "endpoint.yaml"))]
    sb.apply(documents)
    sb.wait_ready("DeployedModel", "my-model-v1", "default", timeout=300)
    sb.wait_for(
        "Endpoint", "my-endpoint", None, lambda e: bool(e) and e["status"]["conditions"][0]["status"] == "True", 60
    )
    assert _status(sb, "my-model-v1")["currentReplicas"] == 1
    url = sb.get("Endpoint", "my-endpoint")[0]["status"]["predictURL"]

    with Load(url) as load:
        scaled = sb.wait_for(
            "DeployedModel", "my-model-v1", None, lambda dm: bool(dm) and dm["status"].get("currentReplicas") == 3, 240
        )
        assert scaled is not None
        status = scaled["status"]
        assert status["desiredReplicas"] == 3 and len(status["replicas"]) == 3
        assert status["autoscaling"]["cpuTarget"] == 2
        assert all(r["startupSeconds"] > 0 for r in status["replicas"])  # each new replica's cold start
        pids = [r["pid"] for r in status["replicas"]]
        assert len(set(pids)) == 3 and all(psutil.pid_exists(pid) for pid in pids)
        pods = [p for p in sb.pods() if p["deployedModel"] == "my-model-v1"]
        assert all("probes" in p for p in pods)  # the replicas the autoscaler added are watched like the first
        # traffic spreads over the ready replicas: each model server works while the load runs
        before = {pid: _cpu_seconds(pid) for pid in pids}
        for _ in range(60):
            answer = requests.post(url, json={"instances": [[1, 2, 3, 4]]}, timeout=30).json()
            assert close(answer["predictions"], reference([[1, 2, 3, 4]]))
        assert all(_cpu_seconds(pid) > before[pid] for pid in pids)
    assert load.failed == 0, f"{load.failed} of {load.sent} requests failed while scaling"
    log = (sb.settings.log_dir / "control-plane.log").read_text()
    assert "out of traffic" not in log and "PodNotReady" not in log  # busy pods were never taken for hung ones

    idle = sb.wait_for(
        "DeployedModel", "my-model-v1", None, lambda dm: bool(dm) and dm["status"].get("currentReplicas") == 1, 120
    )
    assert idle is not None and idle["status"]["desiredReplicas"] == 1
    kept = idle["status"]["replicas"][0]["pid"]
    assert kept == pids[0]  # the newest replicas go first
    removed = [pid for pid in pids if pid != kept]
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in removed)
    pool_status = sb.get("ResourcePool", "cpu-pool")[0]["status"]
    assert (pool_status["currentReplicas"], pool_status["desiredReplicas"]) == (1, 1)
    status, answer = sb.predict("my-endpoint", [[1.0, 2.0, 3.0, 4.0]])
    assert status == 200 and close(answer["predictions"], reference([[1.0, 2.0, 3.0, 4.0]]))
