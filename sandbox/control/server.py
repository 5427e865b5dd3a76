"""The control plane's one port, as an ASGI app (served by uvicorn): predictions on the event loop, the rest
through the admin WSGI app.

A prediction's work is mostly waiting for the pod, so the gateway answers it on uvicorn's event loop (httptools
parser, uvloop) and calls pods over a pool of kept-alive connections: no thread hand-offs, no per-request WSGI
environ; a plain one does not even go through ASGI (:class:`ControlPlaneProtocol`). Everything else (the admin
API the CLI uses, endpoint health, wrong methods on predict routes) goes to
:class:`~sandbox.control.api.ControlPlaneApp` unchanged, run on a thread pool by a2wsgi.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httptools
from a2wsgi import WSGIMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from werkzeug.exceptions import HTTPException

from sandbox.control.api import PREDICTION_ROUTES, ControlPlaneApp
from sandbox.control.gateway import DEPLOYED_MODEL_HEADER, ReadBody, Reply, endpoint_of_host
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
            route, args = self.match(scope["path"])
            if route in PREDICTION_ROUTES:
                await self._predict(scope, receive, send, args, PREDICTION_ROUTES[route])
                return
        await self.admin(scope, receive, send)  # type: ignore[arg-type]

    def match(self, path: str) -> tuple[str, Mapping[str, Any]]:
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

        reply = await self.reply(scope["path"], headers, read_body, args, raw)
        await send({"type": "http.response.start", "status": reply.status, "headers": reply_headers(reply)})
        await send({"type": "http.response.body", "body": reply.body})
        log_reply(scope["path"], reply, started)

    async def reply(
        self, path: str, headers: Mapping[str, str], read_body: ReadBody, args: Mapping[str, Any], raw: bool
    ) -> Reply:
        """The gateway's answer to a prediction request (``headers`` with lower-case names), errors included."""
        try:
            if "ns" in args:
                namespace, endpoint = args["ns"], args["ep"]
            else:
                namespace, endpoint = endpoint_of_host(headers.get("host", ""))
            return await self.gateway.predict(headers, read_body, namespace, endpoint, raw)
        except Exception as exc:  # the single mapping point: never a traceback to the caller
            if not isinstance(exc, (SandboxError, HTTPException)):
                request_log.exception("internal error on POST %s", path)
            return Reply(*error_json(exc))


def reply_headers(reply: Reply) -> list[tuple[bytes, bytes]]:
    """The response headers of a gateway answer, names in lower case as uvicorn sends them (the server adds its
    own: Date, Server)."""
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"content-length", str(len(reply.body)).encode()),
    ]
    if reply.deployed_model_id:
        headers.append((DEPLOYED_MODEL_HEADER.lower().encode(), reply.deployed_model_id.encode("latin-1")))
    headers.extend((name.lower().encode(), value.encode("latin-1")) for name, value in reply.headers)
    return headers


def log_reply(path: str, reply: Reply, started: float) -> None:
    log_request(
        "POST",
        path,
        reply.status,
        time.monotonic() - started,
        reply.body,
        reply.deployed_model_id,
        warned=bool(reply.headers),
    )


class ControlPlaneProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), except that a plain prediction request skips ASGI.

    Per request, ASGI costs a scope, a request/response cycle with its event, a task, and message dicts that are
    checked header by header: about as much CPU as the gateway's own work. A POST to a prediction route that is
    HTTP/1.1 with a ``Content-Length`` body within the limit and no ``Expect``, read whole, is handed to
    :meth:`ControlPlaneServer.reply` and its answer written directly, with uvicorn's status line and default headers
    (Date, Server). Everything else, and any request that arrives while another is being answered (pipelining),
    goes through uvicorn unchanged; a request pipelined behind a prediction waits for it, in order.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.control = self.app if isinstance(self.app, ControlPlaneServer) else None
        self._reading: _Prediction | None = None  # the prediction whose body is being read
        self._answering = False  # a prediction is being answered

    def on_headers_complete(self) -> None:
        prediction = self._prediction()
        if prediction is None:
            super().on_headers_complete()
        else:
            self._reading = prediction

    def _prediction(self) -> _Prediction | None:
        """The request whose headers just arrived, when it can skip ASGI."""
        if (
            self.control is None
            or self._answering
            or self.pipeline
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.expect_100_continue
            or self.parser.get_method() != b"POST"
            or self.parser.get_http_version() != "1.1"
            or self.parser.should_upgrade()
        ):
            return None
        length = next((value for name, value in self.headers if name == b"content-length"), None)
        if length is None or not length.isdigit() or int(length) > self.control.gateway.limit:
            return None
        if any(name == b"transfer-encoding" for name, _ in self.headers):
            return None
        path = httptools.parse_url(self.url).path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        route, args = self.control.match(path)
        if route not in PREDICTION_ROUTES:
            return None
        return _Prediction(path, args, PREDICTION_ROUTES[route], self.headers, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self._reading is None:
            super().on_body(body)
        else:
            self._reading.body.append(body)

    def on_message_complete(self) -> None:
        prediction, self._reading = self._reading, None
        if prediction is None:
            super().on_message_complete()
            return
        self._answering = True
        task = self.loop.create_task(self._answer(prediction))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if self._answering:  # pipelined behind a prediction being answered: after it, in order
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))
            return
        super()._start_asgi_task(cycle, app)

    async def _answer(self, prediction: _Prediction) -> None:
        assert self.control is not None
        started = time.monotonic()
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in prediction.headers}
        body = b"".join(prediction.body)

        async def read_body(limit: int) -> bytes:
            return body

        try:
            reply = await self.control.reply(prediction.path, headers, read_body, prediction.args, prediction.raw)
            if self.flow.write_paused and not self.transport.is_closing():
                await self.flow.drain()  # a client that pipelines without reading: wait, as uvicorn does
            if not self.transport.is_closing():
                self.transport.write(self._response(reply, prediction.keep_alive))
                if not prediction.keep_alive:
                    self.transport.close()
        except Exception:  # a bug here: the caller gets a closed connection, the log the traceback
            request_log.exception("internal error on POST %s", prediction.path)
            self.transport.close()
            return
        finally:
            self._answering = False
        self.on_response_complete()
        log_reply(prediction.path, reply, started)

    def _response(self, reply: Reply, keep_alive: bool) -> bytes:
        content = [STATUS_LINE[reply.status]]
        for name, value in [*self.server_state.default_headers, *reply_headers(reply)]:
            content += (name, b": ", value, b"\r\n")
        if not keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", reply.body)
        return b"".join(content)


@dataclass
class _Prediction:
    """A prediction request read by :class:`ControlPlaneProtocol`."""

    path: str
    args: Mapping[str, Any]
    raw: bool
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    body: list[bytes] = field(default_factory=list)
