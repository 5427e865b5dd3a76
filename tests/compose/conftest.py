"""Compose-backend tests: `make test-compose` runs them against a private dockerd with the stand-in images.

The session sandbox is the pytest plugin's, started with ``--sandbox-backend compose``; the fixtures of
the native integration tests are reused, so the same tests prove the same behaviour on containers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.engine import Sandbox
from sandbox.pytest_plugin import session_key
from sandbox.settings import Settings
from tests.integration.conftest import cli, cli_for, tf_model, torch_model  # noqa: F401  (fixtures used here too)

pytestmark = pytest.mark.requires_docker


def _docker_or_skip() -> None:
    if not os.environ.get("DOCKER_HOST"):
        pytest.skip("needs a Docker engine with the stand-in images: run `make test-compose`")


@pytest.fixture(scope="session")
def sandbox(pytestconfig: pytest.Config) -> Sandbox:
    """The session sandbox, on the compose backend."""
    _docker_or_skip()
    sb = pytestconfig.stash[session_key].get()
    if sb.settings.backend != "compose":
        pytest.skip("run with --sandbox-backend compose (`make test-compose` does)")
    return sb


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A private compose sandbox that a test may stop and restart."""
    _docker_or_skip()
    sb = Sandbox(Settings(home=tmp_path / "home", s3_port=0, gateway_port=0, backend="compose"))
    sb.up()
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture(scope="session")
def docker_client() -> Any:
    _docker_or_skip()
    import docker

    return docker.from_env()


def containers_of(client: Any, sb: Sandbox, deployed_model: str = "") -> list[Any]:
    """The containers of a sandbox home, or of one DeployedModel's pods."""
    found = client.containers.list(all=True, filters={"label": f"gdc-sandbox={sb.settings.home.resolve()}"})
    prefix = f"{sb.settings.project}-{deployed_model}-g"
    return [c for c in found if not deployed_model or c.labels.get("gdc-sandbox.pod", "").startswith(prefix)]
