"""The `/p2p` inbox delivers frames, refuses oversized bodies with 413 before reading them whole, and counts them."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from node.api import inbox
from node.api.inbox import InboxMiddleware

LIMIT = 1000


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    async def receive(self, frame: bytes, source: str | None = None) -> int:
        self.frames.append(frame)
        return 1


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(inbox, "MAX_INBOX_BYTES", LIMIT)
    return SimpleNamespace(transport=FakeTransport(), oversized_requests=0)


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
    response = client.post("/p2p", content=b"x" * LIMIT)
    assert response.status_code == 202
    assert response.headers["x-accepted"] == "1"
    assert node.transport.frames == [b"x" * LIMIT]
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
