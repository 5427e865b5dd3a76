"""A pod that dies keeps its replica slot until it is restarted, as a Kubernetes container restarted in its pod
does: the autoscaler, which counts replicas, never mistakes a dying pod for a missing replica and starts a second
one beside the restart.

The interleaving is injected, not waited for: the pod's watcher is held right after it noticed the death and
before the restart is scheduled (:meth:`RestartBook.died`), and the autoscaler measures the DeployedModel then.
The pods are real model servers (TF, forked from the fork server), run by the control plane's own deployer and
autoscaler in this process.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.control.autoscaler import Autoscaler
from sandbox.control.deployer import Deployer
from sandbox.control.pods import Key, PodTable
from sandbox.control.restarts import PodRestarts, Termination
from sandbox.control.serving import ServingRecord
from sandbox.control.store import ResourceStore
from sandbox.process import wait_until
from sandbox.settings import Settings
from tests.integration.conftest import TF_WARM_ONLY

KEY: Key = ("DeployedModel", "default", "slot")


@pytest.fixture
def deployer(tmp_path: Path, tf_model: tuple[Path, Any]) -> Iterator[Deployer]:
    """A deployer serving ``tf_model`` with one replica (restored from its serving record: no bucket needed)."""
    settings = Settings(home=tmp_path / "home", restart_backoff=0.01, probe_period=0, warm_images=TF_WARM_ONLY)
    store = ResourceStore(settings.state_dir / "resources")
    store.apply({"kind": "DeployedModel", "metadata": {"name": KEY[2], "namespace": KEY[1]}, "spec": {}})
    deployer = Deployer(settings, store, PodTable(settings.state_dir / "pods"), lambda *_: True, None)  # type: ignore[arg-type]
    record = ServingRecord(1, "tf2-cpu.2-18", "s3://models/slot/1", str(tf_model[0]), replicas=1)
    deployer.serving.save(KEY, record)
    deployer.restore([KEY])
    try:
        assert wait_until(lambda: deployer.restore_progress()["done"] == 1, timeout=120)
        assert deployer.pods.generation(KEY) == 1, store.get(KEY)
        yield deployer
    finally:
        deployer.shutdown()


def test_the_autoscaler_meeting_a_pod_between_its_death_and_its_restart_adds_no_replica(
    deployer: Deployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    autoscaler = Autoscaler(deployer.store, deployer.pods, deployer, interval=3600, scale_down_delay=0)
    [pod] = deployer.pods.get(KEY)

    noticed, go_on = threading.Event(), threading.Event()
    record_death = deployer.restarts.died

    def held(key: Any, pod_name: str, termination: Termination) -> tuple[PodRestarts, float]:
        noticed.set()
        assert go_on.wait(timeout=120)
        return record_death(key, pod_name, termination)

    monkeypatch.setattr(deployer.restarts, "died", held)
    os.killpg(pod.process.pid, signal.SIGKILL)
    assert noticed.wait(timeout=60)  # the watcher saw the death; its restart is not scheduled yet

    autoscaler.tick(KEY)
    autoscaler._actions.shutdown(wait=True)  # whatever the autoscaler decided has been done
    go_on.set()

    def restarted() -> bool:
        return any(p.name == pod.name and p.process.pid != pod.process.pid for p in deployer.pods.get(KEY))

    assert wait_until(restarted, timeout=120)
    assert [p.name for p in deployer.pods.get(KEY)] == [pod.name]  # the restart, and no other replica
    replicas = deployer.replica_facts(KEY)["replicas"]
    assert [(r["name"], r["state"], r["restartCount"]) for r in replicas] == [(pod.name, "Running", 1)]
