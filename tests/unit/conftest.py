from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from sandbox.process import free_port
from sandbox.s3.client import Store


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto S3 server over HTTP, in a thread."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def store(moto_url: str) -> Store:
    import requests

    requests.post(moto_url + "/moto-api/reset", timeout=5)
    s = Store(moto_url, "test", "test")
    s.ensure_bucket("models")
    return s
