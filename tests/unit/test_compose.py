"""The compose backend's files and container specs, checked without a Docker engine (tests/compose runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.errors import UsageError
from sandbox.images import IMAGES, resolve
from sandbox.runtimes.base import TERMINATION_GRACE, ModelServerPod, PodSpec
from sandbox.runtimes.container import (
    ENGINE_STOP_SECONDS,
    TFServingContainer,
    TorchServeContainer,
    container_name,
)
from sandbox.runtimes.container_images import MINIO, UPSTREAM, container_image, override_variable
from sandbox.runtimes.registry import BACKENDS
from sandbox.settings import Settings
from sandbox.standins import STANDINS, image_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_gdc_image_has_a_pinned_container_image_and_each_backend_every_framework() -> None:
    assert set(UPSTREAM) == set(IMAGES) | {MINIO}
    for name, ref in UPSTREAM.items():
        assert ":" in ref and not ref.endswith(":latest"), f"{name}: pin the tag of {ref}"
    for backend, runtimes in BACKENDS.items():
        assert set(runtimes) == {"tf", "torch"}, backend


def test_override_variables_replace_the_pinned_images(monkeypatch: pytest.MonkeyPatch) -> None:
    assert override_variable("tf2-cpu.2-18") == "GDC_SANDBOX_IMAGE_TF2_CPU_2_18"
    monkeypatch.delenv("GDC_SANDBOX_IMAGE_TF2_CPU_2_18", raising=False)
    assert container_image("tf2-cpu.2-18") == "tensorflow/serving:2.18.0"
    monkeypatch.setenv("GDC_SANDBOX_IMAGE_TF2_CPU_2_18", "registry.local/gdc/tf2-cpu.2-18:1")
    assert container_image("tf2-cpu.2-18") == "registry.local/gdc/tf2-cpu.2-18:1"


def test_standins_are_never_tagged_with_an_upstream_name() -> None:
    upstream_repositories = {ref.split(":")[0] for ref in UPSTREAM.values()}
    for tag, names in STANDINS.values():
        assert tag.startswith("gdc-sandbox-standin/") and tag.split(":")[0] not in upstream_repositories
        assert all(name in UPSTREAM for name in names)
    assert image_variables()["GDC_SANDBOX_IMAGE_MINIO"] == "gdc-sandbox-standin/minio:moto"


def test_compose_services_use_host_networking_bind_loopback_and_keep_data_on_the_host() -> None:
    minio = COMPOSE["services"]["minio"]
    assert set(COMPOSE["services"]) == {"minio"}
    assert minio["network_mode"] == "host" and "ports" not in minio and "networks" not in COMPOSE
    assert minio["image"] == "${GDC_SANDBOX_IMAGE_MINIO:-" + UPSTREAM[MINIO] + "}"
    addresses = [minio["command"][i + 1] for i, arg in enumerate(minio["command"]) if arg.endswith("address")]
    assert addresses and all(":-127.0.0.1:" in a for a in addresses)
    assert minio["volumes"] == ["${GDC_SANDBOX_MINIO_DATA:-./.sandbox/minio}:/data"]


def _spec(tmp_path: Path, image: str) -> PodSpec:
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    return PodSpec(
        name="default-ep-m-1-g1-abc123-0",
        image=resolve(image),
        artifact_dir=artifact,
        pod_dir=tmp_path / "pod",
        log_path=tmp_path / "pod.log",
    )


def test_tf_container_runs_the_real_binary_flags_on_host_network_with_a_read_only_model(tmp_path: Path) -> None:
    pod = TFServingContainer(_spec(tmp_path, "tf2-cpu.2-18"))
    pod.spec.extra["server_args"] = ["--rest_api_timeout_in_ms=5000"]  # the DeployedModel's container args
    pod.ports = {"http": 18501, "grpc": 18500}
    spec = pod.container_spec()
    assert spec["entrypoint"] == ["tensorflow_model_server"]
    assert spec["command"] == ["--port=18500", "--rest_api_port=18501", "--model_name=default",
                               "--model_base_path=/model", "--rest_api_timeout_in_ms=5000"]
    assert spec["network_mode"] == "host" and spec["init"] is True
    assert spec["volumes"] == {str((tmp_path / "pod" / "model").resolve()): {"bind": "/model", "mode": "ro"}}
    assert spec["labels"]["gdc-sandbox.image"] == "tf2-cpu.2-18" and spec["name"].startswith("gdcs-")


def test_torch_container_starts_torchserve_as_the_image_does(tmp_path: Path) -> None:
    pod = TorchServeContainer(_spec(tmp_path, "pytorch-cpu.2-4"))
    pod.ports = {"http": 1, "management": 2, "metrics": 3, "grpc": 4, "grpc_management": 5}
    spec = pod.container_spec()
    assert spec["entrypoint"] == ["python3"] and "from ts.model_server import start" in spec["command"][1]
    assert spec["command"][2:6] == ["/home/model-server/worker/worker-python", "--foreground", "--ts-config",
                                    "/home/model-server/config/config.properties"]
    mounts = {v["bind"]: v["mode"] for v in spec["volumes"].values()}
    assert mounts == {"/home/model-server/model-store": "ro", "/home/model-server/config": "ro",
                      "/home/model-server/worker": "ro", "/home/model-server/worker/logs": "rw"}


def test_a_container_gets_the_grace_of_every_pod_and_its_standing_process_the_time_to_remove_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "tf").mkdir(), (tmp_path / "torch").mkdir()
    for pod in (TFServingContainer(_spec(tmp_path / "tf", "tf2-cpu.2-18")),
                TorchServeContainer(_spec(tmp_path / "torch", "pytorch-cpu.2-4"))):
        pod.ports = {"http": 1, "management": 2, "metrics": 3, "grpc": 4, "grpc_management": 5}
        assert pod.container_spec()["stop_timeout"] == TERMINATION_GRACE  # docker stop: SIGTERM, then SIGKILL
        assert pod.process_grace == TERMINATION_GRACE + ENGINE_STOP_SECONDS > ModelServerPod.process_grace


def test_container_names_stay_within_dockers_limit() -> None:
    long = container_name("x" * 120)
    assert len(long) <= 63 and long != container_name("x" * 121)


def test_images_without_a_native_runtime_are_refused_natively_but_not_in_containers() -> None:
    old = resolve("tf2-cpu.2-6")
    refusal = BACKENDS["native"]["tf"].refusal(old)
    assert refusal is not None and refusal.code == "deploy.ImageNotSupported"
    assert "GDC_SANDBOX_BACKEND=compose" in refusal.hint
    assert BACKENDS["compose"]["tf"].refusal(old) is None


def test_a_bad_backend_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDC_SANDBOX_BACKEND", "docker")
    with pytest.raises(UsageError) as info:
        Settings()
    assert info.value.code == "settings.invalid"
    assert "GDC_SANDBOX_BACKEND='docker'" in info.value.message and "native or compose" in info.value.message
