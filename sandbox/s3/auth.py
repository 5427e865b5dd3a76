"""Access keys for the sandbox's S3 endpoint: requests must be signed with the project's keys.

moto accepts any credentials. :class:`RequireKeys` is WSGI middleware that checks AWS Signature Version 4
(``Authorization`` header or presigned ``X-Amz-*`` query) and Version 2 (``AWS key:sig`` header, or the
``AWSAccessKeyId``/``Signature``/``Expires`` query boto3 still uses for presigned S3 URLs) against one access
key / secret pair and answers like S3 does when they are wrong:

- unknown access key id -> 403 ``InvalidAccessKeyId``
- right key id, wrong secret (or a tampered request) -> 403 ``SignatureDoesNotMatch``
- no credentials at all, or an expired presigned URL -> 403 ``AccessDenied``

The payload hash is taken from ``x-amz-content-sha256`` as S3 does; the body itself is not re-hashed.
``/moto-api/`` (the sandbox's own health and admin routes) stays open on loopback.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote

from botocore.auth import HmacV1Auth

from sandbox.s3.request import StartResponse, raw_path, s3_error

_ALGORITHM = "AWS4-HMAC-SHA256"
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-fA-F]+)"
)
_V2_HEADER = re.compile(r"AWS (?P<key>[^:\s]+):(?P<signature>\S+)$")
_V2_SUBRESOURCES = frozenset(HmacV1Auth.QSAOfInterest)  # what botocore signs as sub-resources


_FORBIDDEN = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


class S3AuthError(Exception):
    """One of S3's own authentication errors."""

    def __init__(self, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def signature_v2(secret_key: str, environ: dict[str, Any], *, date: str, query: list[tuple[str, str]]) -> str:
    """The Version 2 signature (base64 HMAC-SHA1) S3 would compute; ``date`` is Date or the presign Expires."""
    amz: dict[str, list[str]] = {}
    for name, value in environ.items():
        if name.startswith("HTTP_X_AMZ_"):
            amz.setdefault(name[5:].lower().replace("_", "-"), []).append(" ".join(str(value).split()))
    amz_lines = "".join(f"{k}:{','.join(v)}\n" for k, v in sorted(amz.items()))
    sub = sorted((k, v) for k, v in query if k in _V2_SUBRESOURCES)
    resource = raw_path(environ)
    if sub:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
    string_to_sign = "\n".join(
        [
            environ.get("REQUEST_METHOD", "GET"),
            _header(environ, "content-md5") or "",
            _header(environ, "content-type") or "",
            "" if "HTTP_X_AMZ_DATE" in environ else date,
        ]
    )
    digest = hmac.new(secret_key.encode(), f"{string_to_sign}\n{amz_lines}{resource}".encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_v4(
    secret_key: str,
    environ: dict[str, Any],
    *,
    credential_scope: str,
    amz_date: str,
    signed_headers: list[str],
    payload_hash: str,
    query: list[tuple[str, str]],
) -> str:
    """The SigV4 signature S3 would compute for this request (hex)."""
    canonical_query = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query))
    header_lines = []
    for name in signed_headers:
        value = _header(environ, name) or ""
        header_lines.append(f"{name}:{' '.join(value.split())}\n")
    canonical_request = "\n".join(
        [
            environ.get("REQUEST_METHOD", "GET"),
            raw_path(environ),
            canonical_query,
            "".join(header_lines),
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [_ALGORITHM, amz_date, credential_scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    date, region, service, terminator = credential_scope.split("/")
    key = _hmac(("AWS4" + secret_key).encode(), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class RequireKeys:
    """WSGI middleware: let through only requests signed with ``access_key`` / ``secret_key``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], access_key: str, secret_key: str) -> None:
        self.app, self.access_key, self.secret_key = app, access_key, secret_key

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api/"):
            return self.app(environ, start_response)
        try:
            self.verify(environ)
        except S3AuthError as exc:
            return _error(start_response, exc, environ)
        return self.app(environ, start_response)

    def verify(self, environ: dict[str, Any]) -> None:
        """Raise :class:`S3AuthError` unless the request carries a valid signature with our keys."""
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(query)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization.startswith("AWS ") or ("Signature" in params and "AWSAccessKeyId" in params):
            self._verify_v2(environ, authorization, query, params)
            return
        if authorization:
            v4 = _AUTH_HEADER.match(authorization)
            if v4 is None:
                raise S3AuthError("AuthorizationHeaderMalformed", "The authorization header you provided is invalid.")
            credential, signed, given = v4.group("credential"), v4.group("signed"), v4.group("signature")
            amz_date = _header(environ, "x-amz-date") or ""
            payload_hash = _header(environ, "x-amz-content-sha256") or "UNSIGNED-PAYLOAD"
        elif "X-Amz-Signature" in params:
            credential = params.get("X-Amz-Credential", "")
            signed, given = params.get("X-Amz-SignedHeaders", "host"), params["X-Amz-Signature"]
            amz_date, payload_hash = params.get("X-Amz-Date", ""), "UNSIGNED-PAYLOAD"
            query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
            _check_not_expired(amz_date, params.get("X-Amz-Expires", "604800"))
        else:
            raise S3AuthError("AccessDenied", "Access Denied")
        key_id, _, scope = credential.partition("/")
        self._check_key_id(key_id)
        if scope.count("/") != 3:
            raise S3AuthError("AuthorizationHeaderMalformed", f"The credential scope '{scope}' is malformed.")
        expected = signature_v4(
            self.secret_key,
            environ,
            credential_scope=scope,
            amz_date=amz_date,
            signed_headers=signed.split(";"),
            payload_hash=payload_hash,
            query=query,
        )
        if not hmac.compare_digest(expected, given.lower()):
            raise _signature_mismatch(key_id)

    def _verify_v2(
        self, environ: dict[str, Any], authorization: str, query: list[tuple[str, str]], params: dict[str, str]
    ) -> None:
        if authorization:
            v2 = _V2_HEADER.match(authorization)
            key_id, given = (v2.group("key"), v2.group("signature")) if v2 else ("", "")
            date = _header(environ, "date") or ""
        else:
            key_id, given, date = params["AWSAccessKeyId"], params["Signature"], params.get("Expires", "")
            if not date.isdigit() or int(date) < time.time():
                raise S3AuthError("AccessDenied", "Request has expired")
        self._check_key_id(key_id)
        expected = signature_v2(self.secret_key, environ, date=date, query=query)
        if not hmac.compare_digest(expected, given):
            raise _signature_mismatch(key_id)

    def _check_key_id(self, key_id: str) -> None:
        if not hmac.compare_digest(key_id, self.access_key):
            raise S3AuthError(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=key_id,
            )


def _signature_mismatch(key_id: str) -> S3AuthError:
    return S3AuthError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        AWSAccessKeyId=key_id,
    )


def _check_not_expired(amz_date: str, expires: str) -> None:
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        expired = signed_at + int(expires) < time.time()
    except (ValueError, OverflowError):
        raise S3AuthError("AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 format") from None
    if expired:
        raise S3AuthError("AccessDenied", "Request has expired")


def _error(start_response: StartResponse, exc: S3AuthError, environ: dict[str, Any]) -> list[bytes]:
    status = "403 Forbidden" if exc.code in _FORBIDDEN else "400 Bad Request"
    return s3_error(start_response, environ, status, exc.code, exc.message, **exc.extra)
