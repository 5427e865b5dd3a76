"""One error root for the whole sandbox.

Every error a user can cause carries a stable ``code``, a message that names the evidence and a
``hint`` with the next step. Errors are turned into output in exactly two places: ``cli.main``
(print, return ``exit_code``) and the HTTP layers (``{"error": ..., "code": ..., "hint": ...}``
with ``http_status``).
"""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """Root of every error the sandbox reports to a person."""

    code: str = "sandbox.error"
    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str, *, hint: str = "", code: str | None = None, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details
        if code is not None:
            self.code = code

    def with_status(self, status: int) -> SandboxError:
        """Set the HTTP status this error answers with; returns self for ``raise err.with_status(503)``."""
        self.http_status = status
        return self

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.hint:
            body["hint"] = self.hint
        if self.details:
            body["details"] = self.details
        return body

    def render(self) -> str:
        """The text the CLI prints: ``error[code]: message``, then details and a ``Hint:`` line."""
        lines = [f"error[{self.code}]: {self.message}"]
        if self.details:
            lines.append(self.details.rstrip())
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)


class UsageError(SandboxError):
    """The command line or request was malformed; nothing was changed."""

    code = "usage"
    exit_code = 2
    http_status = 400


class InvalidURI(UsageError):
    """An ``s3://`` URI that does not have the GDC layout."""

    code = "uri.invalid"


class NotFound(SandboxError):
    code = "not-found"
    exit_code = 1
    http_status = 404


class Conflict(SandboxError):
    code = "conflict"
    http_status = 409


class SandboxNotRunning(SandboxError):
    """The CLI needs the control plane and it is not up."""

    code = "sandbox.not-running"
    exit_code = 3
    http_status = 503

    def __init__(self, home: str) -> None:
        super().__init__(
            f"the sandbox is not running (no live control plane for {home})",
            hint="start it with `make sandbox-up` (or `gdc-sandbox up`)",
        )


class StartupTimeout(SandboxError):
    """A component did not answer its health check in time."""

    code = "startup.timeout"
    exit_code = 1

    def __init__(self, service: str, url: str, waited_s: float, log_path: str, log_tail: str) -> None:
        super().__init__(
            f"{service} did not become ready at {url} within {waited_s:.0f}s",
            hint=f"read the full log in {log_path}; a port clash or a missing install step is the usual cause",
            details=f"last lines of {log_path}:\n{log_tail}" if log_tail else "",
        )


class PortInUse(SandboxError):
    """A fixed port the sandbox needs is taken by another program."""

    code = "startup.port-in-use"
    exit_code = 1

    def __init__(self, service: str, address: str, owner: str, env_var: str) -> None:
        super().__init__(
            f"{address} is already in use{f' by {owner}' if owner else ''}; the {service} needs it",
            hint=f"stop that program, or choose another port: {env_var}=<port> make sandbox-up "
            f"({env_var}=0 picks a free one)",
        )


class DeployFailed(SandboxError):
    """The model server refused or failed to load the model."""

    code = "deploy.failed"
    http_status = 502


def model_server_message(body: Any) -> str:
    """The text of a model server's error answer: TF Serving's ``{"error": "..."}``, TorchServe's
    ``{"code", "type", "message"}``, anything else as (truncated) JSON."""
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            return str(body["error"])
        if "message" in body:
            return f"{body.get('type', 'Error')}: {body['message']}"
    import json  # here: `gdc-sandbox check` starts without it

    return json.dumps(body)[:2000]
