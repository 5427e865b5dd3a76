"""HTTP plumbing shared by the control plane's API and gateway: JSON responses and the one error mapping."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from sandbox.errors import SandboxError

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class SegmentConverter(BaseConverter):
    """A path segment that stops at ':' so ``/endpoints/<e>:predict`` splits as Google APIs do."""

    regex = r"[^/:]+"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_body(status: int, message: str, reason: str = "", hint: str = "", **extra: Any) -> dict[str, Any]:
    """Google API error shape, plus the sandbox's stable ``reason`` code and a ``hint``."""
    error: dict[str, Any] = {"code": status, "status": STATUS_NAMES.get(status, "UNKNOWN"), "message": message}
    if reason:
        error["reason"] = reason
    if hint:
        error["hint"] = hint
    error.update({k: v for k, v in extra.items() if v not in (None, "", [])})
    return {"error": error}


def error_response(exc: Exception) -> Response:
    """The one place exceptions become HTTP answers: never a traceback."""
    if isinstance(exc, SandboxError):
        return json_response(
            error_body(
                exc.http_status,
                exc.message,
                exc.code,
                exc.hint,
                details=exc.details,
                diagnostics=getattr(exc, "diagnostics", None),
            ),
            exc.http_status,
        )
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return json_response(error_body(status, exc.description or exc.name, f"http.{status}"), status)
    return json_response(
        error_body(
            500,
            f"internal error: {type(exc).__name__}: {exc}",
            "internal",
            "this is a sandbox bug; the control plane log has the traceback",
        ),
        500,
    )
