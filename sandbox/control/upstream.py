"""The gateway's client to the pods: one POST at a time per kept-alive HTTP/1.1 connection, pooled per pod.

The gateway spends most of its CPU per prediction in its HTTP client, so this is the least that calls a model
server correctly: an asyncio protocol per connection whose responses are parsed by httptools (llhttp, the parser
uvicorn already uses for the gateway's own requests), so framing (Content-Length, chunked, a body that ends with
the connection, no body for 204/304) is the parser's, not ours. What it adds:

- a pool of idle connections per pod, reused in last-in first-out order; a connection leaves it when the pod
  closes it or answers ``Connection: close``;
- :class:`PodClosedConnection` when a connection closes before the pod sent a byte of its answer (a kept-alive
  connection the pod had closed, or a pod that died before answering): the caller may try once more;
- :class:`TimeoutError` when the connection and the whole answer do not come in time (that connection is closed,
  never reused);
- interim answers (``100 Continue``) skipped: the caller gets the final one.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

Answer = tuple[int, bytes, str]
"""(status, body, Content-Type or "") of a pod's answer."""

_SMALL_BODY = 64 * 1024
"""Request bodies up to this size go out in the same write as the head (one segment on loopback)."""


class PodClosedConnection(ConnectionError):
    """The pod closed the connection before sending any byte of its answer."""


class PodConnection(asyncio.Protocol):
    """One connection to a pod, carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Answer] | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._content_type = b""
        self._framed = False  # the answer says where its body ends (Content-Length, chunked)
        self._received = False
        self._chunks: list[bytes] = []

    # -- asyncio.Protocol --------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"the pod's answer is not valid HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._status and not self._framed:  # a body that ends with the connection (HTTP/1.0 style)
            self._finish()
        elif self._received:
            self._fail(ConnectionError("the pod closed the connection in the middle of its answer"))
        else:
            self._fail(PodClosedConnection("the pod closed the connection before answering"))

    # -- httptools callbacks ---------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self._content_type = value
        elif name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._reset()
            return
        if not self._parser.should_keep_alive():
            self.close()
        self._finish()

    # -- the request ------------------------------------------------------------------------------------------
    def send(self, head: bytes, body: bytes) -> asyncio.Future[Answer]:
        """Write one request; the future resolves to the pod's answer (or its error)."""
        assert self.transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        if len(body) <= _SMALL_BODY:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_result((self._status, b"".join(self._chunks), self._content_type.decode("latin-1")))
        self._reset()

    def _fail(self, error: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self._reset()


class PodPool:
    """Kept-alive connections to every pod, by (host, port); made and used on one event loop."""

    def __init__(self, max_idle_per_pod: int = 64) -> None:
        self.max_idle_per_pod = max_idle_per_pod
        self._idle: dict[tuple[str, int], list[PodConnection]] = {}

    async def post(self, host: str, port: int, path: str, body: bytes, content_type: str, timeout: float) -> Answer:
        """POST ``body`` to ``http://host:port/path``: the pod's answer, whatever its status.

        Raises :class:`PodClosedConnection` (the pod closed the connection before answering), :class:`TimeoutError`
        (no whole answer within ``timeout`` seconds), or another :class:`OSError` (refused, reset, bad answer).
        """
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = self._take_idle((host, port))
        if connection is None:
            async with asyncio.timeout_at(deadline):  # a pod too busy to accept counts against the same timeout
                _, connection = await loop.create_connection(PodConnection, host, port)
        answer = connection.send(head, body)
        timer = loop.call_at(deadline, _expire, answer, connection)
        try:
            result = await answer
        except BaseException:
            connection.close()  # timed out, cancelled or broken: its state is unknown, never reuse it
            raise
        finally:
            timer.cancel()
        self._release((host, port), connection)
        return result

    def _take_idle(self, key: tuple[str, int]) -> PodConnection | None:
        """The most recently used idle connection to the pod that is still open, if there is one."""
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    def _release(self, key: tuple[str, int], connection: PodConnection) -> None:
        if connection.closed:
            return
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_idle_per_pod:
            connection.close()
            return
        idle.append(connection)
        if len(self._idle) > 256:  # pods come and go: forget those whose connections all closed
            for gone in [k for k, conns in self._idle.items() if not any(not c.closed for c in conns)]:
                del self._idle[gone]

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _expire(answer: asyncio.Future[Answer], connection: PodConnection) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())
    connection.close()
