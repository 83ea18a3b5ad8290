"""The `/p2p` inbox refuses oversized bodies with 413, before reading them whole, and counts them."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from node.api import p2p
from node.api.deps import get_node

LIMIT = 1000


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    async def receive(self, frame: bytes) -> int:
        self.frames.append(frame)
        return 1


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(p2p, "MAX_INBOX_BYTES", LIMIT)
    return SimpleNamespace(transport=FakeTransport(), oversized_requests=0)


@pytest.fixture
def client(node: SimpleNamespace) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(p2p.router)
    app.dependency_overrides[get_node] = lambda: node
    with TestClient(app) as test_client:
        yield test_client


def test_a_body_within_the_limit_is_delivered(client: TestClient, node: SimpleNamespace):
    response = client.post("/p2p", content=b"x" * LIMIT)
    assert response.status_code == 202
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
