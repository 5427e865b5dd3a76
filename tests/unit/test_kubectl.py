"""kubectl habits: TYPE/NAME, durations, -o name/wide, wait --for conditions."""

import pytest

from sandbox.errors import UsageError
from sandbox.kubectl import format_items, parse_duration, parse_wait_for, split_type_name

DM = {
    "apiVersion": "prediction.aiplatform.gdc.goog/v1",
    "kind": "DeployedModel",
    "metadata": {"name": "m-1", "namespace": "default", "generation": 2},
    "spec": {"modelSpec": {"modelContainerSpec": {"imageURI": "tf2-cpu.2-18"}}},
    "status": {
        "primaryCondition": {"reason": "Ready", "message": "DeployedModel is ready", "observedGeneration": 2},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "observedGeneration": 2}],
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "servingArtifact": "s3://models/m/1/",
    },
}


def test_durations_and_type_name() -> None:
    assert parse_duration("300s") == 300 and parse_duration("5m") == 300 and parse_duration("1h30m") == 5400
    assert parse_duration("2.5") == 2.5
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration("soon")
    assert split_type_name("deployedmodel.prediction.aiplatform.gdc.goog/m-1", None) == ("DeployedModel", "m-1")
    assert split_type_name("endpoints", "ep") == ("Endpoint", "ep")


def test_output_formats() -> None:
    assert format_items([DM], "name", True) == "deployedmodel.prediction.aiplatform.gdc.goog/m-1"
    wide = format_items([DM], "wide", True).splitlines()
    assert wide[0].split()[-2:] == ["REPLICAS", "DETAIL"] and "2/3" in wide[1] and "s3://models/m/1/" in wide[1]
    assert format_items([], "", False) == ""
    with pytest.raises(UsageError, match="output format 'xml'"):
        format_items([DM], "xml", True)


def test_wait_for_conditions() -> None:
    assert parse_wait_for("condition=Ready").test(DM)
    assert parse_wait_for("condition=ready").test(DM)
    assert not parse_wait_for("condition=Ready=False").test(DM)
    stale = {**DM, "metadata": {**DM["metadata"], "generation": 3}}
    assert not parse_wait_for("condition=Ready").test(stale)  # Ready, but for the previous generation
    assert parse_wait_for("jsonpath={.status.primaryCondition.reason}=Ready").test(DM)
    assert not parse_wait_for("jsonpath={.status.primaryCondition.reason}=Failed").test(DM)
    assert parse_wait_for("jsonpath={.status.currentReplicas}").test(DM)
    assert parse_wait_for("delete").test(None) and not parse_wait_for("delete").test(DM)
    with pytest.raises(UsageError, match="unrecognized condition"):
        parse_wait_for("ready")
