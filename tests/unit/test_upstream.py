"""The gateway's client to the pods (:mod:`sandbox.control.upstream`) against scripted pods on loopback sockets:
kept-alive reuse (after an error too), chunked and large answers, bodies that end with the connection, pods that
close, die mid-answer, answer garbage or answer too slowly."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from sandbox.control.upstream import PodClosedConnection, PodPool

Pod = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RUNNERS = {"asyncio": asyncio.run, "uvloop": uvloop.run}  # the control plane runs on uvloop
runner = asyncio.run


@pytest.fixture(autouse=True, params=sorted(RUNNERS))
def event_loop_kind(request: pytest.FixtureRequest) -> None:
    global runner
    runner = RUNNERS[request.param]


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's body (None when the client closed the connection)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


def answer(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def run(pod: Pod, client: Callable[[PodPool, int, list[int]], Awaitable[Any]]) -> Any:
    """Serve ``pod`` on a free loopback port and run ``client(pool, port, connections)``; ``connections`` counts
    the connections the pod accepted."""

    async def main() -> Any:
        connections: list[int] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            try:
                await pod(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        pool = PodPool()
        try:
            return await client(pool, server.sockets[0].getsockname()[1], connections)
        finally:
            pool.close()
            server.close()
            await server.wait_closed()

    return runner(main())


async def post(pool: PodPool, port: int, body: bytes = b"{}", timeout: float = 5.0) -> tuple[int, bytes, str]:
    return await pool.post("127.0.0.1", port, "/predict", body, "application/json", timeout)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each request with its body; a body of b"fail" gets a 500, as a model server's error."""
    while (body := await read_request(reader)) is not None:
        status = 500 if body == b"fail" else 200
        writer.write(answer(status, body, "Content-Type: application/json"))
        await writer.drain()


def test_one_connection_serves_every_request_errors_included() -> None:
    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        answers = [await post(pool, port, body) for body in (b"[1]", b"fail", b"[2]")]
        return [answers, len(connections)]

    answers, connections = run(echo, client)
    assert answers == [
        (200, b"[1]", "application/json"),
        (500, b"fail", "application/json"),
        (200, b"[2]", "application/json"),
    ]
    assert connections == 1


def test_concurrent_requests_each_get_their_own_answer_and_connections_are_pooled() -> None:
    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        bodies = [str(i).encode() for i in range(8)]
        first = await asyncio.gather(*(post(pool, port, body) for body in bodies))
        second = await asyncio.gather(*(post(pool, port, body) for body in bodies))
        return [[a[1] for a in first + second], len(connections), bodies]

    got, connections, bodies = run(echo, client)
    assert got == bodies + bodies
    assert connections == 8


def test_a_chunked_answer_is_read_whole() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b'{"predictions": ', b"[1, 2]", b"}"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")

    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        return [await post(pool, port), await post(pool, port), len(connections)]

    first, second, connections = run(pod, client)
    assert first == second == (200, b'{"predictions": [1, 2]}', "")
    assert connections == 1


def test_an_interim_answer_is_skipped() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (body := await read_request(reader)) is not None:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(200, body))

    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        return [await post(pool, port, b"[1]"), await post(pool, port, b"[2]"), len(connections)]

    assert run(pod, client) == [(200, b"[1]", ""), (200, b"[2]", ""), 1]


def test_large_bodies_go_both_ways() -> None:
    big = b"[" + b"1.0, " * 400_000 + b"1.0]"

    async def client(pool: PodPool, port: int, connections: list[int]) -> tuple[int, bytes, str]:
        return await post(pool, port, big)

    assert run(echo, client) == (200, big, "application/json")


def test_an_answer_without_length_ends_with_the_connection_which_is_not_reused() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")

    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        return [await post(pool, port), await post(pool, port), len(connections)]

    first, second, connections = run(pod, client)
    assert first == second == (200, b"all of it", "text/plain")
    assert connections == 2


def test_connection_close_is_honoured() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"[]", "Connection: close"))
        await writer.drain()
        await reader.read()  # the client closes it

    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        return [await post(pool, port), await post(pool, port), len(connections)]

    first, second, connections = run(pod, client)
    assert first == second == (200, b"[]", "")
    assert connections == 2


def test_a_pod_that_closes_before_answering_raises_pod_closed_connection() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def client(pool: PodPool, port: int, connections: list[int]) -> None:
        await post(pool, port)

    with pytest.raises(PodClosedConnection):
        run(pod, client)


def test_an_idle_connection_the_pod_closed_is_not_reused() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"[]"))  # keep-alive by HTTP/1.1's default, then closed anyway
        await writer.drain()

    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        first = await post(pool, port)
        async with asyncio.timeout(5):  # until the pod's close reached the pool, as between two requests
            while any(not c.closed for conns in pool._idle.values() for c in conns):
                await asyncio.sleep(0.01)
        return [first, await post(pool, port), len(connections)]

    first, second, connections = run(pod, client)
    assert first == second == (200, b"[]", "")
    assert connections == 2


def test_a_pod_that_dies_mid_answer_is_an_error_that_is_not_pod_closed_connection() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"predic')

    async def client(pool: PodPool, port: int, connections: list[int]) -> None:
        await post(pool, port)

    with pytest.raises(ConnectionError, match="in the middle of its answer") as caught:
        run(pod, client)
    assert not isinstance(caught.value, PodClosedConnection)


def test_an_answer_that_is_not_http_is_an_error_and_its_connection_is_dropped() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def client(pool: PodPool, port: int, connections: list[int]) -> None:
        await post(pool, port)

    with pytest.raises(ConnectionError, match="not valid HTTP"):
        run(pod, client)


def test_a_slow_pod_times_out_and_its_connection_is_never_reused() -> None:
    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(reader)
        if body == b"slow":
            await reader.read()  # no answer: waits until the client gives up and closes
            return
        writer.write(answer(200, body or b""))
        await writer.drain()
        await echo(reader, writer)

    async def client(pool: PodPool, port: int, connections: list[int]) -> list[Any]:
        with pytest.raises(TimeoutError):
            await post(pool, port, b"slow", timeout=0.2)
        return [await post(pool, port, b"fast"), len(connections)]

    fast, connections = run(pod, client)
    assert fast == (200, b"fast", "")
    assert connections == 2


def test_a_refused_connection_is_an_os_error() -> None:
    async def client(pool: PodPool, port: int, connections: list[int]) -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        free = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await post(pool, free)

    with pytest.raises(ConnectionRefusedError):
        run(echo, client)


def test_a_pod_too_busy_to_accept_times_out_within_the_same_timeout() -> None:
    """A listening socket whose accept queue is full drops new connections' SYNs: connecting hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = [socket.create_connection(("127.0.0.1", port), timeout=1) for _ in range(1)]  # fills the queue
        try:

            async def main() -> None:
                pool = PodPool()
                started = time.monotonic()
                with pytest.raises(TimeoutError):
                    await post(pool, port, timeout=0.3)
                assert time.monotonic() - started < 5
                pool.close()

            runner(main())
        finally:
            for sock in queued:
                sock.close()
