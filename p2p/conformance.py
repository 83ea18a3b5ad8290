"""The conformance suite every transport must pass (`check_transport`).

`make_pair()` returns an async context manager that yields two started
transports, each listing the other as a peer, on a healthy network. Each
check runs on a fresh pair: delivery with the right sender and body, both
directions, broadcast, many messages each delivered exactly once, routing by
kind, unregistered kinds and junk frames dropped and counted, and a large
body carried intact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from p2p.envelope import Envelope

if TYPE_CHECKING:
    from p2p.transport import Transport

PairFactory = Callable[[], AbstractAsyncContextManager["tuple[Transport, Transport]"]]
"""Makes a fresh pair of started transports connected to each other."""

DELIVERY_TIMEOUT_S = 10.0
"""How long a check waits for messages to arrive."""


class TransportCheckFailed(AssertionError):
    """A transport broke its contract."""


def _collect(transport: Transport, kind: str) -> list[Envelope]:
    received: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        received.append(envelope)

    transport.register(kind, handler)
    return received


async def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DELIVERY_TIMEOUT_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TransportCheckFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise TransportCheckFailed(message)


async def check_send_delivers(a: Transport, b: Transport) -> None:
    received = _collect(b, "test")
    a.send(b.node_id, "test", b"hello")
    await _wait_for(lambda: len(received) == 1, "one message")
    envelope = received[0]
    _expect(envelope.sender == a.node_id, f"sender {envelope.sender!r}, expected {a.node_id!r}")
    _expect((envelope.kind, envelope.body) == ("test", b"hello"), f"got {envelope.kind!r} {envelope.body!r}")


async def check_both_directions_and_broadcast(a: Transport, b: Transport) -> None:
    at_a, at_b = _collect(a, "test"), _collect(b, "test")
    a.broadcast("test", b"from a")
    b.broadcast("test", b"from b")
    await _wait_for(lambda: len(at_a) == 1 and len(at_b) == 1, "a broadcast each way")
    _expect(at_a[0].body == b"from b" and at_a[0].sender == b.node_id, "a got the wrong message")
    _expect(at_b[0].body == b"from a" and at_b[0].sender == a.node_id, "b got the wrong message")


async def check_many_delivered_exactly_once(a: Transport, b: Transport) -> None:
    received = _collect(b, "test")
    bodies = {i.to_bytes(4, "big") for i in range(300)}
    for body in sorted(bodies):
        a.send(b.node_id, "test", body)
    await _wait_for(lambda: len(received) >= len(bodies), "300 messages")
    await asyncio.sleep(0.05)
    got = [envelope.body for envelope in received]
    _expect(len(got) == len(bodies) and set(got) == bodies, f"{len(got)} delivered, {len(set(got))} distinct")
    _expect(len({envelope.seq for envelope in received}) == len(bodies), "sequence numbers repeat")


async def check_routing_by_kind(a: Transport, b: Transport) -> None:
    txs, votes = _collect(b, "txs"), _collect(b, "consensus")
    a.send(b.node_id, "txs", b"t")
    a.send(b.node_id, "consensus", b"c")
    await _wait_for(lambda: len(txs) == 1 and len(votes) == 1, "one message of each kind")
    _expect(txs[0].body == b"t" and votes[0].body == b"c", "kinds routed to the wrong handler")


async def check_unregistered_kind_dropped(a: Transport, b: Transport) -> None:
    received = _collect(b, "test")
    before = b.inbox.gate.dropped["unknown_kind"]
    a.send(b.node_id, "nobody-listens", b"x")
    a.send(b.node_id, "test", b"y")
    await _wait_for(lambda: len(received) == 1, "the registered kind")
    await _wait_for(lambda: b.inbox.gate.dropped["unknown_kind"] == before + 1, "the unknown kind to be counted")


async def check_junk_frame_ignored(a: Transport, b: Transport) -> None:
    received = _collect(b, "test")
    before = b.inbox.gate.dropped["malformed"]
    delivered = await b.receive(b"\xc1 certainly not msgpack")
    _expect(delivered == 0, "a junk frame reached a handler")
    _expect(b.inbox.gate.dropped["malformed"] == before + 1, "a junk frame was not counted")
    a.send(b.node_id, "test", b"still works")
    await _wait_for(lambda: len(received) == 1, "a message after junk")


async def check_large_body(a: Transport, b: Transport) -> None:
    received = _collect(b, "test")
    body = bytes(range(256)) * 4096
    a.send(b.node_id, "test", body)
    await _wait_for(lambda: len(received) == 1, "a 1 MiB message")
    _expect(received[0].body == body, "a large body arrived altered")


CHECKS: tuple[Callable[[Transport, Transport], Awaitable[None]], ...] = (
    check_send_delivers,
    check_both_directions_and_broadcast,
    check_many_delivered_exactly_once,
    check_routing_by_kind,
    check_unregistered_kind_dropped,
    check_junk_frame_ignored,
    check_large_body,
)
"""Every check, each run on a fresh pair."""


async def check_transport(make_pair: PairFactory) -> None:
    """Run every conformance check; raises `TransportCheckFailed` naming the first that fails."""
    for check in CHECKS:
        async with make_pair() as (a, b):
            try:
                await check(a, b)
            except TransportCheckFailed as exc:
                raise TransportCheckFailed(f"{check.__name__}: {exc}") from exc
