"""API tokens for tests that run a node's app in their own process."""

from __future__ import annotations

from pathlib import Path

from ledger.genesis import Genesis
from node.config import GENESIS_FILE
from node.tokens import SCOPES, TokenStore


def make_token(home: Path, identity: str = "operator-1", scopes: frozenset[str] = SCOPES) -> str:
    """A new token of the node at `home` for `identity` (an operator with every scope by default)."""
    return TokenStore(home).create(Genesis.load(home / GENESIS_FILE), identity, scopes)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
