"""The prediction gateway: Vertex/GDC request and response shapes in front of the model-server pods.

It runs on the control plane's event loop (see :mod:`sandbox.control.server`) and keeps the hot path thin: a
request body that is already what the pod needs is forwarded as received, the pod's answer gets its
``deployedModelId`` spliced in rather than re-encoded, and pods are called over one pool of kept-alive
connections (:mod:`sandbox.control.upstream`). Only the rare paths that wait or read files (a pod's log) leave
the loop for a thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox.control.controller import PREDICTION_DOMAIN, Controller
from sandbox.control.http import error_body
from sandbox.control.upstream import PodClosedConnection, PodPool
from sandbox.errors import NotFound, SandboxError, UsageError, model_server_message
from sandbox.runtimes.base import PodInfo
from sandbox.runtimes.registry import RUNTIMES
from sandbox.runtimes.serverlog import last_error_line, wait_until_quiet

DEPLOYED_MODEL_HEADER = "X-Vertex-AI-Deployed-Model-Id"
JSON = "application/json"
RAW_PREDICT_HINT = (
    'a TF Serving body ("inputs", "signature_name", ...) goes to the model server unchanged through '
    ":rawPredict (`gdc-sandbox predict --raw`)"
)
FORWARDED_KEYS = ("instances", "parameters")
"""What GDC's ``:predict`` passes to the model server: the fields of its ``PredictRequest``."""


def parse_envelope(data: bytes, parameters_ignored_by: str = "") -> tuple[bytes, list[str]]:
    """The body GDC's ``:predict`` forwards (``instances`` and, when given, ``parameters``: the request itself
    when that is all it holds, so the hot path does not re-encode it) and warnings about what will have no effect:
    keys it dropped, and ``parameters`` when ``parameters_ignored_by`` says the image's model server ignores them.

    Any body gets either that or a :class:`UsageError` (HTTP 400) that says what is wrong.
    """
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"request body is not valid JSON: {exc}",
            code="predict.malformed-json",
            hint='send {"instances": [...]} with Content-Type: application/json',
        ) from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(body, dict) or "instances" not in body:
        columnar = isinstance(body, dict) and "inputs" in body
        raise UsageError(
            'request body must be a JSON object with an "instances" list'
            + ('; :predict does not take "inputs" (the columnar TF Serving format)' if columnar else ""),
            code="predict.missing-instances",
            hint='wrap the examples: {"instances": [[1.0, 2.0]]} (the outer list is the batch); ' + RAW_PREDICT_HINT,
        )
    if not isinstance(body["instances"], list) or not body["instances"]:
        raise UsageError(
            '"instances" must be a non-empty list (the outer list is the batch)',
            code="predict.bad-instances",
            hint='e.g. {"instances": [[1.0, 2.0, 3.0, 4.0]]}',
        )
    warnings = [_parameters_warning(parameters_ignored_by)] if "parameters" in body and parameters_ignored_by else []
    dropped = [key for key in body if key not in FORWARDED_KEYS]
    if not dropped:
        return data, warnings
    try:
        forwarded = json.dumps({key: body[key] for key in FORWARDED_KEYS if key in body}).encode()
    except RecursionError:  # as deep as json.loads took, but a refusal rather than a 500 if not
        raise _too_deep() from None
    return forwarded, [_dropped_keys_warning(dropped), *warnings]


def _dropped_keys_warning(dropped: list[str]) -> str:
    names = ", ".join(json.dumps(key) for key in sorted(dropped))
    effect = ", so serving_default answered" if "signature_name" in dropped else ""
    return (
        ':predict forwards only "instances" and "parameters" to the model server, as GDC does: '
        f"it dropped {names}{effect}; " + RAW_PREDICT_HINT
    )


def _parameters_warning(ignored_by: str) -> str:
    return (
        f'"parameters" had no effect: GDC passes it to the model server, and {ignored_by}, so the predictions '
        'are those of "instances" alone; to give the model a value, make it part of each instance (an input of '
        "the signature or of the handler)"
    )


def _too_deep() -> UsageError:
    return UsageError(
        "request body is nested too deeply to parse",
        code="predict.too-deeply-nested",
        hint='an instance is a (nested) list of numbers or strings, a {"b64": ...} value, or an object of those; '
        "check how the request body is built",
    )


def _quote(text: str) -> str:
    """A header-safe quoted-string: printable ASCII, with quotes and backslashes escaped."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return printable.replace("\\", "\\\\").replace('"', '\\"')


def endpoint_of_host(host: str) -> tuple[str, str]:
    """(project, endpoint) of an ``endpointFQDN`` Host header (``EP.PROJECT.`` + :data:`PREDICTION_DOMAIN`)."""
    name = host.split(":")[0]
    parts = name.split(".")
    if len(parts) < 3 or not name.endswith(f".{PREDICTION_DOMAIN}"):
        raise NotFound(
            f"no endpoint is addressed by host {name!r}",
            code="endpoint.not-found",
            hint="use the endpoint's predictURL, or send Host: <endpointFQDN>",
        )
    return parts[1], parts[0]


@dataclass
class Reply:
    """One answer of the gateway."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    deployed_model_id: str = ""


ReadBody = Callable[[int], Awaitable[bytes]]
"""Reads the request body, stopping once more than the given number of bytes came in."""


class PredictionGateway:
    """Validates the envelope, enforces the size limit, routes by traffic split, shapes the answer."""

    def __init__(self, controller: Controller, auth: Callable[[str, str], str] | None = None) -> None:
        self.controller = controller
        self.limit = controller.settings.max_request_bytes
        self.auth = auth
        self._pool = PodPool()
        self._addresses: dict[str, tuple[str, int]] = {}

    async def close(self) -> None:
        self._pool.close()

    async def predict(
        self, headers: Mapping[str, str], read_body: ReadBody, namespace: str, endpoint: str, raw: bool = False
    ) -> Reply:
        """One ``:predict`` (or ``:rawPredict``) call; ``headers`` has lower-case names."""
        if self.auth is not None:
            self.auth(headers.get("authorization", ""), namespace)
        if int(headers.get("content-length") or 0) > self.limit:
            raise self._too_large()
        data = await read_body(self.limit)
        if len(data) > self.limit:
            raise self._too_large()
        dm_id, pod, dm_name = self.controller.route(namespace, endpoint)
        if raw:
            status, content, content_type = await self._post(pod, data, headers.get("content-type") or JSON, dm_name)
            return Reply(status, content, content_type, deployed_model_id=dm_id)
        runtime = RUNTIMES.get(pod.framework)
        forwarded, warnings = parse_envelope(data, runtime.parameters_ignored_by if runtime else "")
        reply = await self._forward(pod, forwarded, dm_id, dm_name)
        reply.headers.extend(("Warning", f'299 gdc-sandbox "{_quote(warning)}"') for warning in warnings)
        return reply

    def _too_large(self) -> UsageError:
        return UsageError(
            f"Request payload size exceeds the limit: {self.limit} bytes.",
            code="predict.payload-too-large",
            hint="send fewer instances per request, or export a signature that takes compact "
            "inputs (e.g. b64-encoded image bytes instead of float arrays)",
        )

    async def _post(self, pod: PodInfo, data: bytes, content_type: str, dm_name: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of the pod's answer; a pod that does not answer is a 503 that says why."""
        host, port = self._address(pod.base_url)
        timeout = self.controller.settings.deploy_timeout
        for attempt in (1, 2):
            try:
                status, body, answer_type = await self._pool.post(
                    host, port, pod.predict_path, data, content_type, timeout
                )
                return status, body, answer_type or JSON
            except PodClosedConnection as exc:
                if attempt == 1:  # a kept-alive connection the pod had closed: once more on a new one
                    continue
                error: Exception = exc
            except OSError as exc:  # refused, reset, timed out (TimeoutError), not HTTP
                error = exc
            raise await asyncio.to_thread(self.controller.describe_unreachable, dm_name, pod, error)
        raise AssertionError("unreachable")

    def _address(self, base_url: str) -> tuple[str, int]:
        """(host, port) of a pod's base URL, remembered: pods come and go, but few at a time."""
        address = self._addresses.get(base_url)
        if address is None:
            if len(self._addresses) > 256:
                self._addresses.clear()
            parts = urlsplit(base_url)
            address = self._addresses[base_url] = (parts.hostname or "127.0.0.1", parts.port or 80)
        return address

    async def _forward(self, pod: PodInfo, payload: bytes, dm_id: str, dm_name: str) -> Reply:
        status, content, _ = await self._post(pod, payload, JSON, dm_name)
        if len(content) > self.limit:
            return _error_reply(
                400,
                f"Response size too large. Received at least {len(content)} bytes; the limit is {self.limit} bytes.",
                "predict.response-too-large",
                "request fewer instances, or trim the signature's outputs",
                dm_id,
            )
        try:
            body = json.loads(content)
        except ValueError:
            body = {"error": content.decode("utf-8", "replace").strip() or f"HTTP {status}"}
        if status == 200 and isinstance(body, dict) and "predictions" in body:
            return Reply(200, _with_model_id(content, body, dm_id), deployed_model_id=dm_id)
        message = model_server_message(body)
        answer = status if status >= 400 else 500
        cause = await asyncio.to_thread(_model_server_cause, Path(pod.process.log_path)) if answer >= 500 else ""
        hint = "this is the model server's own error for your request"
        if cause:
            hint += f"; its log says: {cause}"
        return _error_reply(
            answer,
            message,
            "predict.model-server-error",
            hint,
            dm_id,
            modelServerStatus=status,
            modelServerLog=pod.process.log_path,
        )


def _error_reply(status: int, message: str, reason: str, hint: str, dm_id: str, **extra: Any) -> Reply:
    body = error_body(status, message, reason, hint, deployedModelId=dm_id, **extra)
    return Reply(status, json.dumps(body).encode(), deployed_model_id=dm_id)


def _with_model_id(content: bytes, body: dict[str, Any], dm_id: str) -> bytes:
    """The pod's JSON object with ``"deployedModelId"`` added as its last member, without re-encoding it."""
    if "deployedModelId" in body:
        body["deployedModelId"] = dm_id
        return json.dumps(body).encode()
    text = content.rstrip()
    return text[:-1].rstrip() + b', "deployedModelId": ' + json.dumps(dm_id).encode() + b"}"


def _model_server_cause(log_path: Path) -> str:
    """The exception behind a model server's 5xx, once its log has caught up."""
    wait_until_quiet(log_path, quiet=0.1, limit=0.5)
    return last_error_line(log_path)


__all__ = ["PredictionGateway", "Reply", "SandboxError", "endpoint_of_host", "parse_envelope"]
