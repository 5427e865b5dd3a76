"""The compose backend's stack: MinIO in Compose, `status` with containers, `down`/`up` keeping data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.engine import Sandbox
from sandbox.runtimes.container_images import container_image
from tests.compose.conftest import containers_of
from tests.integration.test_durability import (  # noqa: F401  (the native tests, run here on MinIO in Compose)
    test_down_and_up_keep_every_byte_and_every_deployment,
    test_s3_takes_only_the_project_keys,
)


def test_status_lists_each_containers_id_image_and_state(
    sandbox: Sandbox, cli: Callable[..., Any], docker_client: Any
) -> None:
    code, out, _ = cli("status")
    assert code == 0, out
    containers = containers_of(docker_client, sandbox)
    assert any(c.image.tags == [container_image("minio")] for c in containers)
    assert "CONTAINER ID" in out
    for container in containers:
        row = next(line for line in out.splitlines() if line.startswith(container.short_id))
        assert container.name in row and container.image.tags[0] in row and container.status in row


def test_down_leaves_no_container_and_no_process(own_sandbox: Sandbox, docker_client: Any) -> None:
    state = own_sandbox.stack.state()
    assert state is not None and containers_of(docker_client, own_sandbox)
    own_sandbox.down()
    assert containers_of(docker_client, own_sandbox) == []
    assert not state.s3.is_alive() and not state.control.is_alive()
    assert (own_sandbox.settings.home / "minio").is_dir()  # the bucket data stays for the next `up`
