"""The prediction gateway: Vertex/GDC request and response shapes in front of the model-server pods.

The hot path stays thin: a request body that is already what the pod needs (``{"instances": [...]}``) is
forwarded as received, the pod's answer gets its ``deployedModelId`` spliced in rather than re-encoded, and
each gateway thread keeps one kept-alive connection per pod.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.client import Answer, HTTPClient
from sandbox.control.controller import Controller
from sandbox.control.http import error_body, json_response
from sandbox.errors import SandboxError, UsageError, model_server_message
from sandbox.runtimes.base import PodInfo
from sandbox.runtimes.serverlog import last_error_line, wait_until_quiet

DEPLOYED_MODEL_HEADER = "X-Vertex-AI-Deployed-Model-Id"
RAW_PREDICT_HINT = (
    'a TF Serving body ("inputs", "signature_name", ...) goes to the model server unchanged through '
    ":rawPredict (`gdc-sandbox predict --raw`)"
)


def parse_envelope(data: bytes) -> tuple[bytes, list[str]]:
    """The body GDC's ``:predict`` forwards (``{"instances": [...]}``: the request itself when that is all it
    holds, so the hot path does not re-encode it) and warnings about what it dropped.

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
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise UsageError(
            '"parameters" must be a JSON object',
            code="predict.bad-parameters",
            hint='e.g. {"instances": [...], "parameters": {"confidence": 0.5}}, or leave it out',
        )
    if body.keys() == {"instances"}:
        return data, []
    dropped = [key for key in body if key not in ("instances", "parameters")]
    try:
        forwarded = json.dumps({"instances": body["instances"]}).encode()
    except RecursionError:  # as deep as json.loads took, but a refusal rather than a 500 if not
        raise _too_deep() from None
    return forwarded, [_dropped_keys_warning(dropped)] if dropped else []


def _dropped_keys_warning(dropped: list[str]) -> str:
    names = ", ".join(json.dumps(key) for key in sorted(dropped))
    effect = ", so serving_default answered" if "signature_name" in dropped else ""
    return (
        f':predict forwards only "instances" to the model server, as GDC does: it dropped {names}{effect}; '
        + RAW_PREDICT_HINT
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


class PredictionGateway:
    """Validates the envelope, enforces the size limit, routes by traffic split, shapes the answer."""

    def __init__(self, controller: Controller, auth: Callable[[Request, str], str] | None = None) -> None:
        self.controller = controller
        self.limit = controller.settings.max_request_bytes
        self.auth = auth
        self._pods: dict[str, HTTPClient] = {}
        self._pods_lock = threading.Lock()

    def _client(self, base_url: str) -> HTTPClient:
        """The (per-thread keep-alive) client of one pod; forgotten pods' clients are dropped now and then."""
        client = self._pods.get(base_url)
        if client is None:
            with self._pods_lock:
                if len(self._pods) > 256:
                    self._pods.clear()
                client = self._pods.setdefault(base_url, HTTPClient(base_url, self.controller.settings.deploy_timeout))
        return client

    def predict(self, request: Request, namespace: str, endpoint: str, raw: bool = False) -> Response:
        if self.auth is not None:
            self.auth(request, namespace)
        if (request.content_length or 0) > self.limit:
            raise self._too_large()
        data = request.get_data(cache=False)
        if len(data) > self.limit:
            raise self._too_large()
        dm_id, pod, _ = self.controller.route(namespace, endpoint)
        if raw:
            return self._forward_raw(pod, data, request.content_type or "application/json", dm_id)
        forwarded, warnings = parse_envelope(data)
        response = self._forward(pod, forwarded, dm_id)
        response.headers[DEPLOYED_MODEL_HEADER] = dm_id
        for warning in warnings:
            response.headers.add("Warning", f'299 gdc-sandbox "{_quote(warning)}"')
        return response

    def _too_large(self) -> UsageError:
        return UsageError(
            f"Request payload size exceeds the limit: {self.limit} bytes.",
            code="predict.payload-too-large",
            hint="send fewer instances per request, or export a signature that takes compact "
            "inputs (e.g. b64-encoded image bytes instead of float arrays)",
        )

    def _post(self, pod: PodInfo, data: bytes, content_type: str) -> Answer:
        try:
            return self._client(pod.base_url).request("POST", pod.predict_path, data, {"Content-Type": content_type})
        except (OSError, http.client.HTTPException) as exc:
            raise SandboxError(
                f"the model server of this endpoint did not answer: {exc}",
                code="predict.model-server-unreachable",
                hint="`gdc-sandbox status` shows whether the pod is still running",
            ).with_status(503) from None

    def _forward(self, pod: PodInfo, payload: bytes, dm_id: str) -> Response:
        response = self._post(pod, payload, "application/json")
        if len(response.content) > self.limit:
            return json_response(
                error_body(
                    400,
                    f"Response size too large. Received at least {len(response.content)} bytes; "
                    f"the limit is {self.limit} bytes.",
                    "predict.response-too-large",
                    "request fewer instances, or trim the signature's outputs",
                    deployedModelId=dm_id,
                ),
                400,
            )
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text.strip() or f"HTTP {response.status_code}"}
        if response.status_code == 200 and isinstance(body, dict) and "predictions" in body:
            return _with_model_id(response.content, body, dm_id)
        message = model_server_message(body)
        status = response.status_code if response.status_code >= 400 else 500
        cause = _model_server_cause(Path(pod.process.log_path)) if status >= 500 else ""
        hint = "this is the model server's own error for your request"
        if cause:
            hint += f"; its log says: {cause}"
        return json_response(
            error_body(
                status,
                message,
                "predict.model-server-error",
                hint,
                deployedModelId=dm_id,
                modelServerStatus=response.status_code,
                modelServerLog=pod.process.log_path,
            ),
            status,
        )

    def _forward_raw(self, pod: PodInfo, data: bytes, content_type: str, dm_id: str) -> Response:
        response = self._post(pod, data, content_type)
        return Response(
            response.content,
            status=response.status_code,
            content_type=response.headers.get("content-type", "application/json"),
            headers={DEPLOYED_MODEL_HEADER: dm_id},
        )


def _with_model_id(content: bytes, body: dict[str, Any], dm_id: str) -> Response:
    """The pod's JSON object with ``"deployedModelId"`` added as its last member, without re-encoding it."""
    if "deployedModelId" in body:
        body["deployedModelId"] = dm_id
        return json_response(body)
    text = content.rstrip()
    member = b', "deployedModelId": ' + json.dumps(dm_id).encode() + b"}"
    return Response(text[:-1].rstrip() + member, status=200, mimetype="application/json")


def _model_server_cause(log_path: Path) -> str:
    """The exception behind a model server's 5xx, once its log has caught up."""
    wait_until_quiet(log_path, quiet=0.1, limit=0.5)
    return last_error_line(log_path)


__all__ = ["PredictionGateway", "SandboxError"]
