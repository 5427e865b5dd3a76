"""What the S3 WSGI middlewares (:mod:`sandbox.s3auth`, :mod:`sandbox.s3persist`) read from a request."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit


def raw_path(environ: dict[str, Any]) -> str:
    """The request path still percent-encoded, as S3 signs and moto reads it (``RAW_URI`` minus query and origin)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if not raw:
        return quote(str(environ.get("PATH_INFO", "/")).encode("latin-1"), safe="/")
    return urlsplit(raw).path if "://" in raw.split("?", 1)[0] else raw.split("?", 1)[0]
