"""HTTP plumbing shared by the control plane's API and gateway: JSON responses and the one error mapping."""

from __future__ import annotations

import json
import logging
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from sandbox.errors import SandboxError

request_log = logging.getLogger("sandbox.requests")

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


def error_json(exc: Exception) -> tuple[int, bytes]:
    """The one place exceptions become HTTP answers (status, JSON body): never a traceback."""
    status, body = _error(exc)
    return status, json.dumps(body).encode()


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
    """:func:`error_json` as a werkzeug response (the admin API)."""
    status, body = _error(exc)
    return json_response(body, status)


def _error(exc: Exception) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, SandboxError):
        body = error_body(
            exc.http_status,
            exc.message,
            exc.code,
            exc.hint,
            details=exc.details,
            diagnostics=getattr(exc, "diagnostics", None),
        )
        return exc.http_status, body
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return status, error_body(status, exc.description or exc.name, f"http.{status}")
    return 500, error_body(
        500,
        f"internal error: {type(exc).__name__}: {exc}",
        "internal",
        "this is a sandbox bug; the control plane log has the traceback",
    )


def log_request(
    method: str, path: str, status: int, seconds: float, body: bytes, dm_id: str = "", warned: bool = False
) -> None:
    """One line per request: predictions and changes at INFO, reads (polled by `deploy --wait`) at DEBUG."""
    level = logging.DEBUG if method in ("GET", "HEAD") and status < 500 else logging.INFO
    if not request_log.isEnabledFor(level):
        return
    request_log.log(
        level,
        "%s %s -> %d in %.1f ms%s%s%s",
        method,
        path,
        status,
        seconds * 1000,
        f" deployedModelId={dm_id}" if dm_id else "",
        f" error={_reason(status, body)}" if status >= 400 else "",
        " (see the Warning header)" if warned else "",
    )


def _reason(status: int, body: bytes) -> str:
    """The sandbox's error code of an error answer (``error.reason``), or its HTTP status for a raw one."""
    try:
        error = json.loads(body)["error"]
        return str(error.get("reason") or status) if isinstance(error, dict) else "model-server"
    except (ValueError, KeyError, TypeError):
        return str(status)
