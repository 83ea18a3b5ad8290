"""One webhook attempt against hostile receivers: it ends in time and reads no more than a small cap."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable

import httpx

from node.config import NodeConfig
from node.notify.delivery import MAX_RESPONSE_BYTES, Attempt, compute_signature, post_delivery
from node.notify.outbox import RetryPolicy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def attempt_against(handler: Handler, timeout_s: float) -> tuple[Attempt, float]:
    """Run one attempt against a raw TCP server on localhost; how it went and how long it took."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        started = time.monotonic()
        attempt = await post_delivery(
            client, url=f"http://127.0.0.1:{port}/hook", body=b"{}", headers={}, timeout_s=timeout_s
        )
        took = time.monotonic() - started
    server.close()
    return attempt, took


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(2)


def test_a_receiver_that_never_answers_costs_the_timeout_and_no_more() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    attempt, took = asyncio.run(attempt_against(hang, 0.5))
    assert not attempt.ok and attempt.status is None and "no answer within 0.5 s" in attempt.error
    assert took < 5


def test_a_receiver_that_sends_without_end_is_read_up_to_the_cap() -> None:
    streamed = [0]

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 500 Oops\r\ncontent-length: 100000000000\r\n\r\n")
        chunk = b"x" * 65536
        while streamed[0] < 1 << 30:
            writer.write(chunk)
            await writer.drain()
            streamed[0] += len(chunk)

    attempt, took = asyncio.run(attempt_against(flood, 10))
    assert not attempt.ok and attempt.status == 500
    assert attempt.error.startswith("HTTP 500: xxx") and len(attempt.error) <= MAX_RESPONSE_BYTES + 20
    assert streamed[0] < 64 << 20, "the node stopped reading long before a gigabyte"
    assert took < 10


def test_a_success_is_not_read_at_all() -> None:
    async def ok_then_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    attempt, _ = asyncio.run(attempt_against(ok_then_flood, 5))
    assert attempt == Attempt(True, 204, "")


def test_the_signature_is_hmac_sha256_of_the_time_a_dot_and_the_raw_body() -> None:
    body = b'{"cursor":"1","type":"order.created"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert compute_signature("whsec_test", 1_700_000_000, body) == f"t=1700000000,v1={expected}"


def test_the_default_retries_are_at_least_8_over_at_least_an_hour_the_first_within_seconds() -> None:
    config = NodeConfig(node_id="n")
    policy = RetryPolicy(config.webhook_retry_base_ms, config.webhook_retry_cap_ms, config.webhook_max_attempts)
    assert policy.max_attempts >= 8
    for seed in range(50):
        rng = random.Random(seed)
        delays = [policy.compute_delay_ms(failures, rng) for failures in range(1, policy.max_attempts)]
        assert delays[0] <= 3_000 and delays[1] <= 10_000
        assert sum(delays) >= 3_600_000
        assert max(delays) <= policy.cap_ms * 1.2
