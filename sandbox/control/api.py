"""The control plane's HTTP surface: the admin API the CLI uses and the prediction routes users call."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.control.auth import PredictionAuth
from sandbox.control.controller import Controller
from sandbox.control.gateway import PredictionGateway
from sandbox.control.http import SegmentConverter, error_response, json_response, log_request, request_log
from sandbox.errors import SandboxError, UsageError

ADMIN = "/sandbox/v1"
PREDICTION_ROUTES = {
    "predict": False,
    "raw_predict": True,
    "vertex_predict": False,
    "vertex_raw_predict": True,
    "fqdn_predict": False,
}
"""The routes :class:`~sandbox.control.server.ControlPlaneServer` answers on its event loop (the value: whether
the body passes through unchanged, ``:rawPredict``); a wrong method on them still gets this app's 405."""


class ControlPlaneApp:
    """WSGI app of the admin API: thin handlers that parse, call :class:`Controller`, and answer JSON. It owns the
    routing table of the whole port, prediction routes included (see :data:`PREDICTION_ROUTES`)."""

    def __init__(self, controller: Controller, on_shutdown: Callable[[], list[str]]) -> None:
        self.controller = controller
        auth = PredictionAuth(controller.iam) if controller.settings.prediction_auth else None
        self.gateway = PredictionGateway(controller, auth)
        self._request_shutdown = on_shutdown
        self.url_map = Map(
            [
                Rule(f"{ADMIN}/health", endpoint="health", methods=["GET"]),
                Rule(f"{ADMIN}/shutdown", endpoint="shutdown", methods=["POST"]),
                Rule(f"{ADMIN}/apply", endpoint="apply", methods=["POST"]),
                Rule(f"{ADMIN}/deploy", endpoint="deploy", methods=["POST"]),
                Rule(f"{ADMIN}/resources/<kind>", endpoint="list", methods=["GET"]),
                Rule(f"{ADMIN}/resources/<kind>/<ns>/<name>", endpoint="get", methods=["GET"]),
                Rule(f"{ADMIN}/resources/<kind>/<ns>/<name>", endpoint="delete", methods=["DELETE"]),
                Rule(f"{ADMIN}/pods", endpoint="pods", methods=["GET"]),
                Rule(f"{ADMIN}/iam", endpoint="iam_list", methods=["GET"]),
                Rule(f"{ADMIN}/iam", endpoint="iam_grant", methods=["POST"]),
                Rule(f"{ADMIN}/iam", endpoint="iam_revoke", methods=["DELETE"]),
                Rule(f"{ADMIN}/tokens", endpoint="token", methods=["POST"]),
                Rule("/endpoints/<seg:ns>/<seg:ep>/v1/model:predict", endpoint="predict", methods=["POST"]),
                Rule("/endpoints/<seg:ns>/<seg:ep>/v1/model:rawPredict", endpoint="raw_predict", methods=["POST"]),
                Rule("/endpoints/<seg:ns>/<seg:ep>/health", endpoint="health_endpoint", methods=["GET"]),
                Rule(
                    "/v1/projects/<seg:ns>/locations/<seg:loc>/endpoints/<seg:ep>:predict",
                    endpoint="vertex_predict",
                    methods=["POST"],
                ),
                Rule(
                    "/v1/projects/<seg:ns>/locations/<seg:loc>/endpoints/<seg:ep>:rawPredict",
                    endpoint="vertex_raw_predict",
                    methods=["POST"],
                ),
                Rule("/v1/model:predict", endpoint="fqdn_predict", methods=["POST"]),
            ],
            converters={"seg": SegmentConverter},
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        started = time.monotonic()
        try:
            endpoint, args = adapter.match()
            response = getattr(self, f"on_{endpoint}")(request, **args)
        except Exception as exc:  # the single mapping point: never a traceback to the caller
            if not _expected(exc):
                request_log.exception("internal error on %s %s", request.method, request.path)
            response = error_response(exc)
        status = response.status_code
        log_request(request.method, request.path, status, time.monotonic() - started, response.get_data())
        return response(environ, start_response)

    # -- admin ---------------------------------------------------------------------------------
    def on_health(self, request: Request) -> Response:
        return json_response(
            {
                "status": "ok",
                "pid": os.getpid(),
                "gateway": self.controller.gateway_url,
                "restore": self.controller.deployer.restore_progress(),
                "predictionAuth": self.controller.settings.prediction_auth,
            }
        )

    def on_shutdown(self, request: Request) -> Response:
        """Stop every pod (at once) and answer with their names; the caller then stops this process."""
        return json_response({"status": "pods stopped", "stopped": self._request_shutdown()})

    def on_apply(self, request: Request) -> Response:
        body = _json(request)
        return json_response({"applied": self.controller.apply(body.get("documents", []), body.get("namespace"))})

    def on_deploy(self, request: Request) -> Response:
        body = _json(request)
        for field in ("uri", "image", "endpoint"):
            if not body.get(field) or not isinstance(body[field], str):
                raise UsageError(f"deploy needs {field!r} (a string)", code="deploy.bad-request")
        numbers = {}
        for field, default in (("replicas", 1), ("traffic", 100)):
            value = body.get(field, default)
            if not isinstance(value, int) or isinstance(value, bool):
                raise UsageError(f"deploy: {field!r} must be an integer, not {value!r}", code="deploy.bad-request")
            numbers[field] = value
        return json_response(
            self.controller.deploy(
                body["uri"],
                body["image"],
                body["endpoint"],
                body.get("namespace"),
                bool(body.get("force")),
                numbers["replicas"],
                traffic=numbers["traffic"],
            )
        )

    def on_list(self, request: Request, kind: str) -> Response:
        return json_response({"items": self.controller.get(kind, request.args.get("namespace"))})

    def on_get(self, request: Request, kind: str, ns: str, name: str) -> Response:
        return json_response(self.controller.get(kind, ns, name)[0])

    def on_delete(self, request: Request, kind: str, ns: str, name: str) -> Response:
        item, warnings = self.controller.delete(kind, ns, name)
        return json_response({"deleted": {"kind": item["kind"], "name": name, "namespace": ns}, "warnings": warnings})

    def on_pods(self, request: Request) -> Response:
        """Every pod of every DeployedModel: Running (ready or not), Restarting or CrashLoopBackOff, with its
        restart count and, while it runs, how its probes went."""
        probes = self.controller.deployer.probe_counts()
        pods = []
        for dm in self.controller.store.list("DeployedModel"):
            status = dm.get("status") or {}
            for replica in status.get("replicas", []):
                pods.append(
                    {
                        "deployedModel": dm["metadata"]["name"],
                        "namespace": dm["metadata"]["namespace"],
                        "image": status.get("servingImage", ""),
                        "generation": status.get("servingGeneration"),
                        **replica,
                        **({"probes": probes[replica["name"]]} if replica["name"] in probes else {}),
                    }
                )
        return json_response({"pods": pods})

    def on_iam_list(self, request: Request) -> Response:
        args = request.args
        bindings = self.controller.iam.list(
            args.get("project"), args.get("identity"), args.get("role"), args.get("bucket") or args.get("resource")
        )
        return json_response({"bindings": [b.__dict__ for b in bindings]})

    def on_iam_grant(self, request: Request) -> Response:
        body = _json(request)
        binding = self.controller.iam.grant(
            body.get("project") or self.controller.settings.project,
            body.get("identity", ""),
            body.get("role", ""),
            body.get("bucket"),
        )
        for key in self.controller.store.keys("DeployedModel"):
            self.controller.deployer.enqueue(key)
        return json_response({"granted": binding.__dict__})

    def on_iam_revoke(self, request: Request) -> Response:
        body = _json(request)
        binding = self.controller.iam.revoke(
            body.get("project") or self.controller.settings.project,
            body.get("identity", ""),
            body.get("role", ""),
            body.get("bucket"),
        )
        return json_response({"revoked": binding.__dict__})

    def on_token(self, request: Request) -> Response:
        body = _json(request)
        token = self.controller.iam.issue_token(
            body.get("project") or self.controller.settings.project, body.get("identity", "")
        )
        return json_response({"token": token})

    def on_health_endpoint(self, request: Request, ns: str, ep: str) -> Response:
        """Ready when every destination with traffic has a pod that answers its health check now."""
        probe = self.controller.probe(ns, ep)
        return json_response({"endpoint": ep, **probe}, 200 if probe["ready"] else 503)


def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError as exc:
        raise UsageError(f"request body is not valid JSON: {exc}", code="api.malformed-json") from None
    except RecursionError:
        raise UsageError("request body is nested too deeply to parse", code="api.malformed-json") from None
    if not isinstance(body, dict):
        raise UsageError("request body must be a JSON object", code="api.malformed-json")
    return body


def _expected(exc: Exception) -> bool:
    return isinstance(exc, (SandboxError, HTTPException))
