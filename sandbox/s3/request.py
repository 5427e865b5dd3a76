"""What the S3 WSGI middlewares (:mod:`sandbox.s3.auth`, :mod:`sandbox.s3.persist`) share: the raw request
path and S3's XML error answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

StartResponse = Callable[..., Any]


def raw_path(environ: dict[str, Any]) -> str:
    """The request path still percent-encoded, as S3 signs and moto reads it (``RAW_URI`` minus query and origin)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if not raw:
        return quote(str(environ.get("PATH_INFO", "/")).encode("latin-1"), safe="/")
    return urlsplit(raw).path if "://" in raw.split("?", 1)[0] else raw.split("?", 1)[0]


def s3_error(
    start_response: StartResponse, environ: dict[str, Any], status: str, code: str, message: str, **extra: str
) -> list[bytes]:
    """Answer with S3's ``<Error>`` document (no body for HEAD, as S3 does)."""
    fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{fields}"
        f"<Resource>{escape(raw_path(environ))}</Resource><RequestId>gdc-sandbox</RequestId></Error>"
    ).encode()
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]
