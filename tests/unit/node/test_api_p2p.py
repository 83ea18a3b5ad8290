"""The `/p2p` inbox delivers frames, refuses oversized bodies with 413 before reading them whole, and counts them;
every refused frame (a replay, an oversized body) is charged to its source, which is answered 429 without its
body being read once its budget is spent."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from node.api import inbox
from node.api.inbox import InboxMiddleware
from p2p.envelope import Envelope, EnvelopeGate, seal
from p2p.inbox import Inbox, SourceBudget, encode_frame
from p2p.peers import PeerTable
from tests.helpers.builders import make_network

LIMIT = 1000
BUDGET = 8
"""Refusals a source may spend (the budget refills too slowly to matter here)."""
NET = make_network(4)
GENESIS = NET.genesis
HOME = "node-3"


class RecordingTransport:
    """The transport's receiving end: a real inbox (gate, budget of refusals), and the frames handed to it."""

    def __init__(self) -> None:
        budget = SourceBudget(capacity=BUDGET, refill_per_s=0.001)
        self.inbox = Inbox(EnvelopeGate(GENESIS, HOME), PeerTable.from_genesis(GENESIS, HOME), budget=budget)
        self.frames: list[bytes] = []
        self.delivered: list[Envelope] = []

        async def deliver(envelope: Envelope) -> None:
            self.delivered.append(envelope)

        self.inbox.register("consensus", deliver)

    async def receive(self, frame: bytes, source: str | None = None) -> int:
        self.frames.append(frame)
        return await self.inbox.receive(frame, source)


def sealed_frame(seq: int = 1) -> bytes:
    """A frame of one envelope node-1 sealed for this node."""
    envelope = seal(
        NET.keys["node-1"],
        sender="node-1",
        recipient=HOME,
        chain_id=GENESIS.chain_id,
        seq=seq,
        kind="consensus",
        body=b"vote",
    )
    return encode_frame([envelope])


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(inbox, "MAX_INBOX_BYTES", LIMIT)
    return SimpleNamespace(transport=RecordingTransport(), oversized_requests=0)


@pytest.fixture
def client(node: SimpleNamespace) -> Iterator[TestClient]:
    app = FastAPI()
    app.add_middleware(InboxMiddleware)
    app.state.node = node

    @app.get("/p2p")
    async def other() -> dict[str, str]:
        return {"passed": "through"}

    with TestClient(app) as test_client:
        yield test_client


def test_a_body_within_the_limit_is_delivered(client: TestClient, node: SimpleNamespace):
    frame = sealed_frame()
    response = client.post("/p2p", content=frame)
    assert response.status_code == 202
    assert response.headers["x-accepted"] == "1"
    assert node.transport.frames == [frame] and len(node.transport.delivered) == 1
    assert node.oversized_requests == 0


def test_a_declared_oversized_body_is_refused_and_counted(client: TestClient, node: SimpleNamespace):
    response = client.post("/p2p", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert node.transport.frames == []
    assert node.oversized_requests == 1


def test_a_streamed_body_is_cut_off_at_the_limit(client: TestClient, node: SimpleNamespace):
    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"y" * 100

    response = client.post("/p2p", content=chunks())
    assert response.status_code == 413
    assert node.transport.frames == []
    assert node.oversized_requests == 1


def test_other_requests_pass_through_to_the_routes(client: TestClient, node: SimpleNamespace):
    assert client.get("/p2p").json() == {"passed": "through"}
    assert client.post("/p2p/elsewhere").status_code == 404
    assert node.transport.frames == []


def test_replayed_frames_are_charged_until_the_source_is_cut_off_before_its_body_is_read(
    client: TestClient, node: SimpleNamespace
):
    frame = sealed_frame()
    assert client.post("/p2p", content=frame).headers["x-accepted"] == "1"
    answers = [client.post("/p2p", content=frame).status_code for _ in range(BUDGET + 5)]
    assert answers == [202] * BUDGET + [429] * 5, "each frame of replays costs its source one refusal"
    gate = node.transport.inbox.gate
    assert gate.dropped["replay"] == BUDGET and gate.dropped["rate_limited"] == 5
    assert len(node.transport.frames) == 1 + BUDGET, "a source cut off is answered before its body is read"
    assert client.post("/p2p", content=sealed_frame(2)).status_code == 429, "even its honest frames wait"


def test_oversized_frames_are_charged_to_their_source(client: TestClient, node: SimpleNamespace):
    answers = [client.post("/p2p", content=b"x" * (LIMIT + 1)).status_code for _ in range(BUDGET)]
    assert answers == [413] * BUDGET and node.oversized_requests == BUDGET
    assert client.post("/p2p", content=sealed_frame()).status_code == 429
    assert node.transport.frames == [] and node.transport.inbox.gate.dropped["oversized"] == BUDGET
