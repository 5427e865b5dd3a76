import copy
from pathlib import Path

import pytest
import yaml

from sandbox.control.conditions import PRIMARY_KEYS, normalised, primary_condition
from sandbox.control.resources import (
    MACHINE_TYPES,
    advisories,
    pool_autoscaling,
    pool_machine,
    validate,
    version_folder,
)
from sandbox.errors import UsageError
from sandbox.kinds import canonical_kind, qualified_kind

API = "prediction.aiplatform.gdc.goog/v1"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gdc"
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


def test_artifact_location_is_the_model_folder_or_the_version_folder() -> None:
    assert str(version_folder("s3://models/m", "1")) == "s3://models/m/1/"
    assert str(version_folder("s3://models/m/", "1")) == "s3://models/m/1/"
    assert str(version_folder("s3://models/m/1/", "1")) == "s3://models/m/1/"
    doc = copy.deepcopy(DM)
    doc["spec"]["modelSpec"].update(artifactLocation="s3://models/m", id="any-unique-id")
    assert validate(doc, "document 1", "proj")["spec"]["modelSpec"]["id"] == "any-unique-id"
    doc["spec"]["modelSpec"]["artifactLocation"] = "s3://models/m/2"
    _invalid(doc, "spec.modelSpec: artifactLocation 's3://models/m/2' is the version folder '2'", "modelVersionID")
    doc["spec"]["modelSpec"]["artifactLocation"] = "s3://models"
    _invalid(doc, "is not s3://BUCKET/MODEL_ID")


def test_every_documented_example_validates_without_changes() -> None:
    """examples/gdc/ holds GDC's documented manifests (names filled in); each is valid as written."""
    kinds = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            resource = validate(doc, path.name, "default")
            kinds.append(resource["kind"])
            assert resource["apiVersion"] == doc["apiVersion"]
    assert sorted(set(kinds)) == ["DeployedModel", "Endpoint", "ResourcePool"]


def test_documented_fields_are_accepted_with_no_invented_limits() -> None:
    pool = yaml.safe_load((EXAMPLES / "resource-pool-gpu.yaml").read_text())
    pool["spec"]["dedicatedResources"]["autoscaling"] = {
        "minReplica": 20,
        "maxReplica": 200,
        "cpuTarget": 70,
        "gpuDutyCycleTarget": 50,
    }
    pool["spec"]["dedicatedResources"]["machineSpec"]["acceleratorCount"] = 28
    resource = validate(pool, "document 1", "p")
    assert resource["spec"]["dedicatedResources"]["autoscaling"]["maxReplica"] == 200
    assert any("gpuDutyCycleTarget" in note for note in advisories(resource))
    del pool["spec"]["dedicatedResources"]["machineSpec"]
    assert validate(pool, "document 1", "p")["spec"]["dedicatedResources"]["machineSpec"]["machineType"] == (
        "n2-standard-2-gdc"
    )
    documented = [f"n2-{family}-{n}-gdc" for family in ("standard", "highmem") for n in (4, 8, 16, 32)]
    documented += ["a2-highgpu-1g-gdc", "a2-ultragpu-1g-gdc", "a2-ultragpu-2g-gdc"]
    documented += [f"a3-highgpu-{n}g-gdc" for n in (1, 2, 4)]
    assert set(MACHINE_TYPES) == {*documented, "n2-standard-2-gdc"}
    pool["spec"]["dedicatedResources"]["machineSpec"] = {"machineType": "n2-highmem-2-gdc"}
    _invalid(pool, "unknown machine type 'n2-highmem-2-gdc'")
    dm = copy.deepcopy(DM)
    dm["spec"]["resourcePoolRef"] = {
        "apiVersion": API,
        "kind": "ResourcePool",
        "name": "pool",
        "namespace": "p",
        "uid": "123",
        "resourceVersion": "7",
    }
    dm["spec"]["sharesResourcePool"] = True
    shared = validate(dm, "document 1", "p")
    assert shared["spec"]["sharesResourcePool"] is True
    assert any("sharesResourcePool has no effect" in note for note in advisories(shared))


def test_endpoint_is_aiplatform_group_with_user_id_dns_name_and_service_kinds() -> None:
    endpoint = yaml.safe_load((EXAMPLES / "endpoint.yaml").read_text())
    endpoint["spec"].update(userProvidedID="mine", dnsName="old.example")
    endpoint["spec"]["destinations"][0]["serviceRef"]["kind"] = "Service"
    resource = validate(endpoint, "document 1", "p")
    notes = advisories(resource)
    assert any("dnsName is deprecated" in n for n in notes)
    assert any("kind Service is not routable by the sandbox" in n for n in notes)
    endpoint["apiVersion"] = API
    _invalid(
        endpoint,
        'apiVersion: no matches for kind "Endpoint" in version "prediction.aiplatform.gdc.goog/v1"',
        "use apiVersion: aiplatform.gdc.goog/v1",
    )
    assert qualified_kind("Endpoint") == "endpoint.aiplatform.gdc.goog"
    assert canonical_kind("deployedmodel.prediction.aiplatform.gdc.goog") == "DeployedModel"


def test_every_problem_of_a_document_is_reported_at_once_with_clean_paths() -> None:
    doc = copy.deepcopy(DM)
    doc["metadata"]["name"] = "Bad_Name"
    doc["spec"]["modelSpec"]["artifactUri"] = "s3://x/y/z"
    doc["spec"]["endpointPath"] = "nowhere"
    doc["spec"]["modelSpec"]["modelContainerSpec"]["imageURI"] = "tf2-cpu.9-9"
    _invalid(
        doc,
        "metadata.name: must be a DNS label",
        "spec.endpointPath: must be projects/",
        "spec.modelSpec.artifactUri: unknown field",
        "spec.modelSpec.modelContainerSpec.imageURI: unknown prebuilt image",
    )
    endpoint = yaml.safe_load((EXAMPLES / "endpoint.yaml").read_text())
    endpoint["spec"]["destinations"][0]["trafficPercentage"] = 90
    endpoint["spec"]["destinations"][0]["serviceRef"]["kind"] = "Deployment"
    with pytest.raises(UsageError) as excinfo:
        validate(endpoint, "document 1", "p")
    details = excinfo.value.details
    assert "spec: destinations[].trafficPercentage must add up to 100 (got 90)" in details
    assert "spec.destinations[0].serviceRef.kind: unknown kind 'Deployment'" in details
    assert "spec.:" not in details and "spec.destinations.0" not in details


def test_primary_condition_has_exactly_gdcs_keys_and_old_status_still_loads() -> None:
    cond = primary_condition("m-1", 3, "Ready", "DeployedModel is ready")
    assert tuple(sorted(cond)) == PRIMARY_KEYS
    later = primary_condition("m-1", 3, "Ready", "DeployedModel is ready", cond)
    assert later["firstObservedTime"] == cond["firstObservedTime"]
    old = {
        "primaryCondition": {
            "type": "DeployedModel",
            "status": "True",
            "reason": "Ready",
            "message": "DeployedModel is ready",
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        },
        "observedGeneration": 2,
    }
    fixed = normalised(old, "m-1")
    assert tuple(sorted(fixed["primaryCondition"])) == PRIMARY_KEYS
    assert fixed["primaryCondition"]["firstObservedTime"] == "2025-01-01T00:00:00Z"
    assert fixed["conditions"][0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "DeployedModel is ready",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": 2,
    }


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
    _invalid(pool, "spec.dedicatedResources.autoscaling: maxReplica (2) must be >= minReplica (3)")
    pool["spec"]["dedicatedResources"]["autoscaling"] = {"minReplica": 1, "maxReplica": 2}
    pool["spec"]["dedicatedResources"]["machineSpec"]["machineType"] = "huge-machine"
    _invalid(pool, "unknown machine type 'huge-machine'")


def test_bad_kind_api_version_and_name() -> None:
    _invalid({**DM, "kind": "Deployment"}, "unknown kind 'Deployment'")
    _invalid({**DM, "apiVersion": "apps/v1"}, 'apiVersion: no matches for kind "DeployedModel" in version "apps/v1"')
    _invalid({**DM, "metadata": {"name": "Bad_Name"}}, "DNS label")
    assert canonical_kind("dm") == "DeployedModel"
    with pytest.raises(UsageError):
        canonical_kind("pods")


def test_pools_stored_by_older_sandboxes_still_scale() -> None:
    old = {
        "spec": {
            "dedicatedResources": {
                "machineSpec": {"machineType": "n2-highmem-2-gdc", "acceleratorType": ""},
                "autoscaling": {"minReplica": 2, "maxReplica": 4},
            }
        }
    }
    assert pool_machine(old).machineType == "n2-standard-2-gdc"
    assert (pool_autoscaling(old).minReplica, pool_autoscaling(old).maxReplica) == (2, 4)
    assert pool_autoscaling(None).minReplica == 1
