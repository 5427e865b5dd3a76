"""The control plane's one port, as an ASGI app (served by uvicorn): predictions on the event loop, the rest
through the admin WSGI app.

A prediction's work is mostly waiting for the pod, so the gateway answers it on uvicorn's event loop (httptools
parser, uvloop) and calls pods over a pool of kept-alive connections: no thread hand-offs, no per-request WSGI
environ. Everything else (the admin API the CLI uses, endpoint health, wrong methods on predict routes) goes to
:class:`~sandbox.control.api.ControlPlaneApp` unchanged, run on a thread pool by a2wsgi.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from a2wsgi import WSGIMiddleware
from werkzeug.exceptions import HTTPException

from sandbox.control.api import PREDICTION_ROUTES, ControlPlaneApp
from sandbox.control.gateway import DEPLOYED_MODEL_HEADER, Reply, endpoint_of_host
from sandbox.control.http import error_json, log_request, request_log
from sandbox.errors import SandboxError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ControlPlaneServer:
    """ASGI app: routes with the admin app's own URL map, answers prediction routes itself."""

    def __init__(self, app: ControlPlaneApp, admin_threads: int = 16) -> None:
        self.gateway = app.gateway
        self.routes = app.url_map.bind("localhost")
        self.admin = WSGIMiddleware(app, workers=admin_threads)  # type: ignore[arg-type]
        self._matched: dict[str, tuple[str, Mapping[str, Any]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            route, args = self._match(scope["path"])
            if route in PREDICTION_ROUTES:
                await self._predict(scope, receive, send, args, PREDICTION_ROUTES[route])
                return
        await self.admin(scope, receive, send)  # type: ignore[arg-type]

    def _match(self, path: str) -> tuple[str, Mapping[str, Any]]:
        """The POST route of a path ("" when none), remembered: clients call the same few URLs over and over."""
        found = self._matched.get(path)
        if found is None:
            try:
                found = self.routes.match(path, "POST")
            except HTTPException:
                found = ("", {})
            if len(self._matched) >= 1024:
                self._matched.clear()
            self._matched[path] = found
        return found

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _predict(self, scope: Scope, receive: Receive, send: Send, args: Mapping[str, Any], raw: bool) -> None:
        started = time.monotonic()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}

        async def read_body(limit: int) -> bytes:
            chunks, size, more = [], 0, True
            while more and size <= limit:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                more = message.get("more_body", False)
            return b"".join(chunks)

        try:
            if "ns" in args:
                namespace, endpoint = args["ns"], args["ep"]
            else:
                namespace, endpoint = endpoint_of_host(headers.get("host", ""))
            reply = await self.gateway.predict(headers, read_body, namespace, endpoint, raw)
        except Exception as exc:  # the single mapping point: never a traceback to the caller
            if not isinstance(exc, (SandboxError, HTTPException)):
                request_log.exception("internal error on POST %s", scope["path"])
            reply = Reply(*error_json(exc))
        response_headers = [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode()),
        ]
        if reply.deployed_model_id:
            response_headers.append((DEPLOYED_MODEL_HEADER.encode(), reply.deployed_model_id.encode("latin-1")))
        response_headers.extend((name.encode(), value.encode("latin-1")) for name, value in reply.headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": reply.body})
        log_request(
            "POST",
            scope["path"],
            reply.status,
            time.monotonic() - started,
            reply.body,
            reply.deployed_model_id,
            warned=bool(reply.headers),
        )
