import copy

import pytest

from sandbox.control.resources import canonical_kind, validate
from sandbox.errors import UsageError

API = "prediction.aiplatform.gdc.goog/v1"
DM = {
    "apiVersion": API,
    "kind": "DeployedModel",
    "metadata": {"name": "m-1"},
    "spec": {
        "endpointPath": "projects/p/locations/l/endpoints/ep",
        "modelSpec": {
            "artifactLocation": "s3://models/m/1/",
            "id": "m",
            "modelVersionID": "1",
            "modelContainerSpec": {"imageURI": "gcr.io/aiml/prediction/containers/tf2-cpu.2-18:latest"},
        },
        "resourcePoolRef": {"kind": "ResourcePool", "name": "pool", "namespace": "p"},
    },
}


def test_valid_deployed_model_gets_the_default_namespace() -> None:
    resource = validate(copy.deepcopy(DM), "document 1", "proj")
    assert resource["metadata"]["namespace"] == "proj"
    assert resource["spec"]["modelSpec"]["id"] == "m"


def _invalid(doc: dict, *fragments: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        validate(doc, "document 1", "proj")
    text = excinfo.value.message + "\n" + excinfo.value.details
    for fragment in fragments:
        assert fragment in text, text
    assert excinfo.value.code == "resource.invalid"


def test_unknown_field_is_named_with_the_allowed_ones() -> None:
    doc = copy.deepcopy(DM)
    doc["spec"]["modelSpec"]["artifactUri"] = "s3://x/y/z"
    _invalid(doc, "spec.modelSpec.artifactUri: unknown field", "artifactLocation")


def test_missing_field_and_bad_uri_and_bad_image() -> None:
    doc = copy.deepcopy(DM)
    del doc["spec"]["endpointPath"]
    _invalid(doc, "spec.endpointPath: required field is missing")
    doc = copy.deepcopy(DM)
    doc["spec"]["modelSpec"]["artifactLocation"] = "s3://models/m/1/saved_model.pb"
    _invalid(doc, "names a file")
    doc = copy.deepcopy(DM)
    doc["spec"]["modelSpec"]["modelContainerSpec"]["imageURI"] = "tf2-cpu.9-9"
    _invalid(doc, "unknown prebuilt image")


def test_ids_must_match_the_artifact_location() -> None:
    doc = copy.deepcopy(DM)
    doc["spec"]["modelSpec"]["modelVersionID"] = "2"
    _invalid(doc, "do not match artifactLocation")


def test_endpoint_traffic_must_sum_to_100_and_pool_replicas_are_ordered() -> None:
    endpoint = {
        "apiVersion": API,
        "kind": "Endpoint",
        "metadata": {"name": "ep"},
        "spec": {
            "destinations": [
                {"serviceRef": {"kind": "DeployedModel", "name": "a"}, "trafficPercentage": 60},
                {"serviceRef": {"kind": "DeployedModel", "name": "b"}, "trafficPercentage": 30},
            ]
        },
    }
    _invalid(endpoint, "add up to 100 (got 90)")
    pool = {
        "apiVersion": API,
        "kind": "ResourcePool",
        "metadata": {"name": "pool"},
        "spec": {
            "resourcePoolID": "pool",
            "dedicatedResources": {
                "machineSpec": {"machineType": "n2-standard-2-gdc"},
                "autoscaling": {"minReplica": 3, "maxReplica": 2},
            },
        },
    }
    _invalid(pool, "maxReplica (2) must be >= minReplica (3)")
    pool["spec"]["dedicatedResources"]["autoscaling"] = {"minReplica": 1, "maxReplica": 2}
    pool["spec"]["dedicatedResources"]["machineSpec"]["machineType"] = "huge-machine"
    _invalid(pool, "unknown machine type 'huge-machine'")


def test_bad_kind_api_version_and_name() -> None:
    _invalid({**DM, "kind": "Deployment"}, "invalid")
    with pytest.raises(UsageError, match="apiVersion"):
        validate({**DM, "apiVersion": "apps/v1"}, "document 1", "p")
    _invalid({**DM, "metadata": {"name": "Bad_Name"}}, "DNS label")
    assert canonical_kind("dm") == "DeployedModel"
    with pytest.raises(UsageError):
        canonical_kind("pods")
