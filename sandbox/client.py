"""HTTP client for the control plane's admin API and gateway; server errors come back as SandboxError."""

from __future__ import annotations

from typing import Any

import requests

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


class ControlPlaneClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        try:
            response = self.session.request(
                method, self.base_url + path, json=body, params=params, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise SandboxError(
                f"cannot reach the control plane at {self.base_url}: {exc}",
                code="sandbox.unreachable",
                hint="`gdc-sandbox status`; `make sandbox-up`",
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {"error": {"message": response.text[:2000]}}
        if response.status_code >= 400:
            raise RemoteError(response.status_code, data)
        return data

    def post_raw(
        self, path: str, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.session.post(
            self.base_url + path,
            data=body,
            headers={"Content-Type": content_type, **(headers or {})},
            timeout=self.timeout,
        )
