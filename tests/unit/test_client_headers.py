"""The CLI's HTTP client keeps every value of a repeated header: the gateway sends one ``Warning`` per problem."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.client import HTTPClient
from sandbox.engine import _WARNING

WARNINGS = ['299 gdc-sandbox "it dropped \\"signature_name\\""', '299 gdc-sandbox "\\"parameters\\" had no effect"']


class TwoWarnings(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        for warning in WARNINGS:
            self.send_header("Warning", warning)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), TwoWarnings)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_every_warning_header_reaches_the_caller(server: str) -> None:
    answer = HTTPClient(server).request("POST", "/predict", b"{}", {"Content-Type": "application/json"})
    assert _WARNING.findall(answer.headers["warning"]) == [
        'it dropped \\"signature_name\\"',
        '\\"parameters\\" had no effect',
    ]
