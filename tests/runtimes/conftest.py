"""Fixtures for the per-image runtime tests: deploy a built artifact on an image of the session sandbox."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.engine import Sandbox
from sandbox.errors import SandboxError
from sandbox.testing.scratch import private_keras_home

private_keras_home()
_names = itertools.count()


@dataclass
class Outcome:
    """What a real deploy of one artifact on one image did."""

    served: bool
    endpoint: str
    error: str = ""


@pytest.fixture
def deploy(sandbox: Sandbox) -> Iterator[Callable[..., Outcome]]:
    """``deploy(folder, image, force=True)``: upload, deploy and report; everything deployed is deleted at the end."""
    made: list[tuple[str, str]] = []

    def run(folder: Path, image: str, *, force: bool = True) -> Outcome:
        n = next(_names)
        uri = f"s3://models/rt-{n}/1"
        sandbox.upload(folder, uri, overwrite=True, progress=False)
        endpoint = f"rt-{n}-ep"
        try:
            done = sandbox.deploy(uri, image, endpoint, force=force)
        except SandboxError as exc:
            made.append(("DeployedModel", getattr(exc, "deployed_model", "") or ""))
            return Outcome(False, endpoint, f"{exc.message}\n{exc.details}")
        made.extend([("Endpoint", endpoint), ("DeployedModel", done.deployed_model)])
        return Outcome(True, endpoint)

    yield run
    for kind, name in made:
        if name:
            try:
                sandbox.delete(kind, name)
            except SandboxError:
                pass


@pytest.fixture
def scratch(tmp_path: Path) -> Callable[[str], Path]:
    """``scratch("name")``: a fresh folder under the test's tmp_path."""

    def make(name: str) -> Path:
        path = tmp_path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    return make


def predictions(sandbox: Sandbox, endpoint: str, instances: list[Any]) -> Any:
    status, body = sandbox.predict(endpoint, instances)
    assert status == 200, body
    return body["predictions"]
