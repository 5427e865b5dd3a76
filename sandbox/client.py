"""HTTP client for the control plane's admin API and gateway; server errors come back as SandboxError.

Standard library only (``http.client`` over one keep-alive connection): every CLI command talks to the
control plane, and importing ``requests`` would cost more than the call itself.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sandbox.errors import SandboxError, model_server_message


class RemoteError(SandboxError):
    """An error the control plane answered with, carrying its code, hint and details."""

    def __init__(self, status: int, body: Any) -> None:
        error = _error_fields(body)
        details = [str(error.get("details", ""))]
        if error.get("modelServerLog"):
            details.append(f"model server log: {error['modelServerLog']}")
        super().__init__(
            str(error.get("message") or f"HTTP {status}"),
            code=str(error.get("reason") or f"http.{status}"),
            hint=str(error.get("hint", "")),
            details="\n".join(d for d in details if d),
        )
        self.http_status = status
        self.exit_code = 2 if status == 400 else 1  # a malformed request vs. a refusal
        self.body = body
        self.diagnostics = error.get("diagnostics")


def _error_fields(body: Any) -> dict[str, Any]:
    """The fields of any error answer: the sandbox's Google-style ``{"error": {...}}`` or a model server's own."""
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return dict(body["error"])
        if "raw" in body:  # not JSON at all (see Sandbox.predict)
            return {"message": str(body["raw"])[:2000]}
    return {"message": model_server_message(body)}


@dataclass
class Answer:
    """One HTTP answer, read whole."""

    status_code: int
    content: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _combined(fields: list[tuple[str, str]]) -> dict[str, str]:
    """Header fields by lower-case name; a repeated one (a `Warning` per problem) joined by ", ", as HTTP allows."""
    headers: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class HTTPClient:
    """Requests to one ``http://host:port`` over a kept-alive connection per thread; reconnects once when the
    server closed an idle connection. Raises ``OSError``/``http.client.HTTPException`` when unreachable."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        for attempt in (1, 2):
            conn = self._connection()
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                content = response.read()
            except (ConnectionError, http.client.BadStatusLine) as exc:
                self.close()
                # A kept-alive connection the server had closed: send once more on a new one.
                if attempt == 1 and reused and not isinstance(exc, ConnectionRefusedError):
                    continue
                raise
            except BaseException:
                self.close()
                raise
            if response.will_close:
                self.close()
            return Answer(response.status, content, _combined(response.getheaders()))
        raise AssertionError("unreachable")


class ControlPlaneClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.http = HTTPClient(base_url, timeout)
        self.base_url = self.http.base_url

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        try:
            return self.http.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise SandboxError(
                f"cannot reach the control plane at {self.base_url}: {exc}",
                code="sandbox.unreachable",
                hint="`gdc-sandbox status`; `make sandbox-up`",
            ) from None

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        if params:
            path += "?" + urlencode(params)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        response = self._send(method, path, payload, headers)
        try:
            data = response.json()
        except ValueError:
            data = {"error": {"message": response.text[:2000]}}
        if response.status_code >= 400:
            raise RemoteError(response.status_code, data)
        return data

    def post_raw(
        self, path: str, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> Answer:
        return self._send("POST", path, body, {"Content-Type": content_type, **(headers or {})})


def http_call(method: str, url: str, timeout: float = 5.0) -> Answer:
    """One request on a new connection (health probes, one-off calls); raises ``OSError`` when unreachable."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        return HTTPClient(f"{parts.scheme}://{parts.netloc}", timeout).request(method, path)
    except http.client.HTTPException as exc:
        raise ConnectionError(str(exc)) from None
