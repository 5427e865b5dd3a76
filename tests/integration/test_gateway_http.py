"""The gateway's HTTP on the wire: a plain prediction (answered without ASGI, see
:class:`sandbox.control.server.ControlPlaneProtocol`) gets the same answer as one that goes through uvicorn's ASGI
path (HTTP/1.0, a chunked body, ``Expect: 100-continue``), and requests pipelined on one connection, predictions
and admin calls mixed, errors included, are answered in order."""

from __future__ import annotations

import http.client
import io
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox.engine import Sandbox

pytestmark = pytest.mark.slow

BODY = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]], "signature_name": "x"}).encode()  # a dropped key: a Warning


@pytest.fixture(scope="module")
def predict_url(sandbox: Sandbox, tf_model: tuple[Path, Any]) -> str:
    folder, _ = tf_model
    sandbox.upload(folder, "s3://models/wire/1", overwrite=True, progress=False)
    return sandbox.deploy("s3://models/wire/1", "tf2-cpu.2-18", "wire").predict_url


class _Buffered:
    """What http.client.HTTPResponse reads from: one buffered file for every answer on the connection, which
    reading an answer does not close."""

    def __init__(self, file: io.BufferedReader) -> None:
        self.file = file

    def makefile(self, *args: Any, **kwargs: Any) -> _Buffered:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)

    def close(self) -> None:
        pass


def exchange(url: str, *requests: bytes, methods: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``requests`` in one write on one connection; the answers, in order (status, headers, body)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"".join(requests))
        file = sock.makefile("rb")
        answers = []
        for i in range(len(requests)):
            response = http.client.HTTPResponse(_Buffered(file), method=methods[i] if methods else "POST")  # type: ignore[arg-type]
            response.begin()
            headers = {name.lower(): value for name, value in response.getheaders() if name.lower() != "date"}
            answers.append((response.status, headers, response.read()))
        return answers


def post(url: str, body: bytes, version: str = "1.1", extra: str = "") -> bytes:
    parts = urlsplit(url)
    return (
        f"POST {parts.path} HTTP/{version}\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def chunked(url: str, body: bytes) -> bytes:
    parts = urlsplit(url)
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    return head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def test_every_way_of_sending_a_prediction_gets_the_same_answer(predict_url: str) -> None:
    (plain,) = exchange(predict_url, post(predict_url, BODY))
    (old,) = exchange(predict_url, post(predict_url, BODY, version="1.0"))
    (by_chunks,) = exchange(predict_url, chunked(predict_url, BODY))
    (expecting,) = exchange(predict_url, post(predict_url, BODY, extra="Expect: 100-continue\r\n"))
    assert plain[0] == 200 and "predictions" in json.loads(plain[2])
    assert plain[1]["warning"].startswith('299 gdc-sandbox ":predict forwards only')
    assert set(plain[1]) == {"server", "content-type", "content-length", "x-vertex-ai-deployed-model-id", "warning"}
    assert old[1].pop("connection") == "close"
    for other in (old, by_chunks, expecting):
        assert other == plain


def test_errors_are_the_same_on_both_paths_and_the_connection_stays_usable(predict_url: str) -> None:
    bad = b'{"instances": [[1.0, 2.0'
    answers = exchange(predict_url, post(predict_url, bad), chunked(predict_url, bad), post(predict_url, BODY))
    assert answers[0] == answers[1]
    status, headers, body = answers[0]
    assert status == 400 and json.loads(body)["error"]["reason"] == "predict.malformed-json"
    assert "x-vertex-ai-deployed-model-id" not in headers
    assert answers[2][0] == 200


def test_pipelined_requests_are_answered_in_order(sandbox: Sandbox, predict_url: str) -> None:
    parts = urlsplit(predict_url)
    health = f"GET /sandbox/v1/health HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    missing = post(predict_url.replace("/wire/", "/no-such-endpoint/"), BODY)
    requests = (post(predict_url, BODY), health, post(predict_url, BODY), missing, chunked(predict_url, BODY))
    answers = exchange(predict_url, *requests, methods=("POST", "GET", "POST", "POST", "POST"))
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 200]
    assert json.loads(answers[1][2])["gateway"] == sandbox.running().gateway_url
    assert json.loads(answers[3][2])["error"]["reason"] == "endpoint.not-found"
    assert answers[0] == answers[2] == answers[4]


def test_a_body_over_the_limit_is_refused_before_it_is_read(sandbox: Sandbox, predict_url: str) -> None:
    limit = sandbox.settings.max_request_bytes
    parts = urlsplit(predict_url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {limit + 1}\r\n\r\n"
    ).encode()
    (answer,) = exchange(predict_url, head)  # the body is never sent: the answer comes from the headers alone
    assert answer[0] == 400 and json.loads(answer[2])["error"]["reason"] == "predict.payload-too-large"
