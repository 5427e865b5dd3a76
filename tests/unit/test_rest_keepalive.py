"""The TF Serving stand-in's HTTP server keeps connections alive, as TF Serving's own does, and a request whose
body the app did not read does not leak into the next request on the same connection."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.runtimes.tfserving.rest import _Server


def echo_path(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Reads the body only on /read (the RestApi answers some errors without reading it)."""
    body = environ["wsgi.input"].read() if environ["PATH_INFO"] == "/read" else b""
    data = json.dumps({"path": environ["PATH_INFO"], "method": environ["REQUEST_METHOD"], "body": body.decode()})
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data.encode()]


@pytest.fixture
def port() -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), echo_path)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def test_one_connection_serves_many_requests_read_or_not(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path, body in [("/read", b"abc"), ("/ignored", b"x" * 70000), ("/read", b"def"), ("/a%20b", b"")]:
        conn.request("POST", path, body)
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200 and not response.will_close and response.version == 11
        assert answer["path"] == path.replace("%20", " ")
        assert answer["body"] == (body.decode() if path == "/read" else "")
    first_socket = conn.sock
    conn.request("DELETE", "/read")
    response = conn.getresponse()
    assert json.loads(response.read())["method"] == "DELETE" and conn.sock is first_socket


def test_chunked_bodies_are_read_and_drained(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path in ("/read", "/ignored", "/read"):
        conn.request("POST", path, body=iter([b"12", b"345"]), encode_chunked=True)
        response = conn.getresponse()
        assert json.loads(response.read())["body"] == ("12345" if path == "/read" else "")
        assert not response.will_close
