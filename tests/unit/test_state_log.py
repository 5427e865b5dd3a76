"""The control plane's record of what happened: one log line per resource change and per condition change."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sandbox.control.store import ResourceStore

DM = {
    "apiVersion": "prediction.aiplatform.gdc.goog/v1",
    "kind": "DeployedModel",
    "metadata": {"name": "m-v1", "namespace": "default"},
    "spec": {"modelSpec": {"artifactLocation": "s3://models/m/1/", "modelContainerSpec": {"imageURI": "tf2-cpu.2-18"}}},
}


def test_changes_and_condition_transitions_are_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sandbox.state")
    store = ResourceStore(tmp_path)
    key = ("DeployedModel", "default", "m-v1")
    store.apply(DM)
    store.apply(DM)  # unchanged: no line
    deploying = {"primaryCondition": {"reason": "Deploying", "message": "deploying generation 1"}}
    store.set_status(key, deploying)
    store.set_status(key, deploying)  # same condition: no line
    store.set_status(key, {"deployedModelID": "42", "primaryCondition": {"reason": "Ready", "message": "ready"}})
    store.delete(key)
    assert [r.getMessage() for r in caplog.records] == [
        "created DeployedModel default/m-v1 generation 1: artifact s3://models/m/1/ on tf2-cpu.2-18",
        "DeployedModel default/m-v1 new -> Deploying: deploying generation 1",
        "DeployedModel default/m-v1 (deployedModelId 42) Deploying -> Ready: ready",
        "deleted DeployedModel default/m-v1",
    ]
