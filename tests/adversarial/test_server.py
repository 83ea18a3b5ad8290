"""A slow client cannot hold a connection: a request not complete within the deadline is cut off, while a
client that keeps to it is served as usual. Nor can many clients open more than the most connections allowed:
past it a new connection is closed at once, and once one closes a newcomer is served again."""

from __future__ import annotations

import asyncio
import time

import pytest
import uvicorn
from fastapi import FastAPI

from devnet.network import free_ports
from node import server

DEADLINE_S = 0.5


async def _with_server(scenario, max_connections: int = 100) -> None:  # type: ignore[no-untyped-def]
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    (port,) = free_ports(1)
    protocol = server.make_protocol(max_connections)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_level="warning")
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:
        await asyncio.sleep(0.01)
    try:
        await scenario(port)
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

    async def scenario(port: int) -> None:
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

    async def scenario(port: int) -> None:
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

    async def scenario(port: int) -> None:
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
