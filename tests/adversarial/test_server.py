"""A slow client cannot hold a connection: a request not complete within the deadline is cut off, while a
client that keeps to it is served as usual. Nor can many clients open more than the most connections allowed:
past it a new connection is closed at once, and once one closes a newcomer is served again. A client that never
reads a large answer holds at most a piece of it in its connection's buffer, and loses the connection at the write
deadline; one that reads gets the whole answer."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import uvicorn
from fastapi import FastAPI, Response

from devnet.network import free_ports
from node import server
from node.api.limits import ANSWER_CHUNK_BYTES, AnswerPacing

DEADLINE_S = 0.5


BIG = bytes(range(256)) * (32 * 1024)
"""An 8 MiB answer."""


async def _with_server(  # type: ignore[no-untyped-def]
    scenario, max_connections: int = 100, write_deadline_s: float = server.WRITE_DEADLINE_S
) -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    @app.get("/big")
    async def big() -> Response:
        return Response(BIG, media_type="application/octet-stream")

    app.add_middleware(AnswerPacing)
    (port,) = free_ports(1)
    protocol = server.make_protocol(max_connections, write_deadline_s)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_level="warning")
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:
        await asyncio.sleep(0.01)
    try:
        await scenario(port, running, protocol)
    finally:
        running.should_exit = True
        await task


async def _closed_after(reader: asyncio.StreamReader) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(reader.read(), timeout=10 * DEADLINE_S)
    return time.perf_counter() - started


@pytest.mark.parametrize(
    "partial",
    [
        b"",
        b"POST /echo HTT",
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-le",
        b'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\ncontent-type: application/json\r\n\r\n{"a"',
    ],
    ids=["silent", "half-request-line", "half-headers", "half-body"],
)
def test_a_request_not_sent_in_time_loses_its_connection(monkeypatch: pytest.MonkeyPatch, partial: bytes) -> None:
    monkeypatch.setattr(server, "REQUEST_DEADLINE_S", DEADLINE_S)

    async def scenario(port: int, *_: object) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(partial)
        await writer.drain()
        assert await _closed_after(reader) < 5 * DEADLINE_S
        writer.close()

    asyncio.run(_with_server(scenario))


def test_a_client_that_keeps_to_the_deadline_is_served_on_a_kept_alive_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "REQUEST_DEADLINE_S", DEADLINE_S)

    async def scenario(port: int, *_: object) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for value in (1, 2):
            body = b'{"a": %d}' % value
            writer.write(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b'{"a":%d}' % value), timeout=5)
            assert answer.startswith(b"HTTP/1.1 200")
            await asyncio.sleep(DEADLINE_S / 2)
        writer.close()

    asyncio.run(_with_server(scenario))


async def _echo(port: int, value: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"a": %d}' % value
    writer.write(
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=5)
    writer.close()
    return answer


def test_past_the_most_connections_a_new_one_is_closed_at_once_until_one_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "REQUEST_DEADLINE_S", 30.0)

    async def scenario(port: int, *_: object) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.1)
        refused = await _echo(port, 1)
        assert refused == b"", "closed before anything was read"
        _reader, writer = held.pop()
        writer.close()
        await asyncio.sleep(0.1)
        assert (await _echo(port, 2)).startswith(b"HTTP/1.1 200")
        for _reader, writer in held:
            writer.close()

    asyncio.run(_with_server(scenario, max_connections=3))


async def _ask_big(port: int, receive_buffer: int | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
    await writer.drain()
    return reader, writer


def test_a_client_that_never_reads_its_answer_holds_a_bounded_buffer_and_loses_the_connection() -> None:
    async def scenario(port: int, running: uvicorn.Server, protocol: type[server.BoundedProtocol]) -> None:
        _reader, writer = await _ask_big(port, receive_buffer=4096)
        peaks = []
        deadline = time.monotonic() + 30
        while protocol.abandoned == 0 and time.monotonic() < deadline:
            peaks += [conn.transport.get_write_buffer_size() for conn in running.server_state.connections]
            await asyncio.sleep(0.02)
        assert protocol.abandoned == 1, "aborted at the write deadline"
        assert max(peaks) <= server.ANSWER_BUFFER_BYTES + ANSWER_CHUNK_BYTES <= len(BIG) // 16
        await asyncio.sleep(0.1)
        assert not running.server_state.connections
        writer.close()

    asyncio.run(_with_server(scenario, write_deadline_s=DEADLINE_S))


def test_a_client_that_reads_gets_the_whole_large_answer_in_pieces() -> None:
    async def scenario(port: int, running: uvicorn.Server, protocol: type[server.BoundedProtocol]) -> None:
        reader, writer = await _ask_big(port)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: %d" % len(BIG) in head.lower()
        assert await asyncio.wait_for(reader.readexactly(len(BIG)), timeout=30) == BIG
        assert protocol.abandoned == 0
        writer.close()

    asyncio.run(_with_server(scenario, write_deadline_s=DEADLINE_S))
