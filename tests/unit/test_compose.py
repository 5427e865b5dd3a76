"""The Compose path cannot run here (no Docker engine): check it statically."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sandbox.runtimes.registry import RUNTIMES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICE_FOR_RUNTIME = {"tf": "tfserving", "torch": "torchserve"}


def test_every_runtime_has_a_compose_service_a_scenario_and_a_doc_section() -> None:
    readme = (ROOT / "README.md").read_text()
    scenarios = "\n".join(p.read_text() for p in (ROOT / "scenarios").rglob("*.yaml"))
    for runtime in RUNTIMES:
        assert SERVICE_FOR_RUNTIME[runtime] in COMPOSE["services"], runtime
        image_prefix = {"tf": "image: tf2-", "torch": "image: pytorch-"}[runtime]
        assert image_prefix in scenarios, f"no scenario for runtime {runtime}"
    assert "## Docker Compose" in readme


def test_images_are_pinned_and_ports_bind_to_loopback() -> None:
    for name, service in COMPOSE["services"].items():
        image = service.get("image")
        if image:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} must bind to loopback"
        if name != "minio-init":
            assert "healthcheck" in service, f"{name}: `up --wait` needs a healthcheck"


def test_build_contexts_and_mounted_files_exist() -> None:
    for name, service in COMPOSE["services"].items():
        if "build" in service:
            assert (ROOT / service["build"]["context"] / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./containers/"):
                assert (ROOT / source).exists(), f"{name}: {source} missing"


def test_torchserve_container_is_configured_like_the_prebuilt_image() -> None:
    props = (ROOT / "containers/torchserve/config.properties").read_text()
    for line in ("service_envelope=json", "disable_token_authorization=true", "enable_model_api=true"):
        assert line in props
    assert "model.mar" in (ROOT / "containers/torchserve/Dockerfile").read_text()


def test_tf_model_config_parses_as_tf_serving_text_proto() -> None:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    text = (ROOT / "containers/tfserving/models.config").read_text()
    config = text_format.Parse(re.sub(r"#.*", "", text), model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["default"]
