"""API tokens for tests that run a node's app in their own process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ledger.genesis import Genesis
from ledger.tx import Tx
from node.config import GENESIS_FILE
from node.tokens import SCOPES, TokenStore


def make_token(home: Path, identity: str = "operator-1", scopes: frozenset[str] = SCOPES) -> str:
    """A new token of the node at `home` for `identity` (an operator with every scope by default)."""
    return TokenStore(home).create(Genesis.load(home / GENESIS_FILE), identity, scopes)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def commit(client: TestClient, tx: Tx) -> dict[str, Any]:
    """Submit one signed tx and wait until it is in a committed block."""
    response = client.post("/v1/tx", json={**tx.to_wire(), "signature": tx.signature.hex()})
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 10
    while True:
        status: dict[str, Any] = client.get(f"/v1/tx/{tx.id.hex()}").json()
        if status.get("status") in ("committed", "rejected"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.01)
