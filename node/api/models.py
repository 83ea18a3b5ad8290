"""Pydantic models of the API boundary (the ledger has its own types; these only travel over HTTP)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TxIn(BaseModel):
    """A signed tx as JSON; `signature` is hex. Payload numbers must be integers.

    Strict, as the msgpack form is: no field besides these, and no coercion (a `nonce` of `"5"`, `5.0` or
    `true` is refused, not read as 5 or 1).
    """

    model_config = ConfigDict(strict=True, extra="forbid")

    chain_id: str
    kind: str = Field(examples=["stock.receive"])
    signer: str = Field(examples=["store-1"])
    nonce: int
    payload: dict[str, Any]
    signature: str = Field(description="Ed25519 signature, hex, over the canonical msgpack of the other fields")


class TxAccepted(BaseModel):
    tx_id: str
    status: str = "pending"


class TxBatchResult(BaseModel):
    tx_id: str
    accepted: bool
    error: str | None = None
    message: str | None = None


class TxStatus(BaseModel):
    tx_id: str
    status: str = Field(description="pending, committed or rejected")
    height: int | None = None
    index: int | None = None
    receipt: dict[str, Any] | None = None
    reason: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str


class Status(BaseModel):
    node_id: str
    chain_id: str
    height: int
    head_hash: str
    state_root: str
    view: int
    primary: str
    view_changing: bool = False
    """True while the replica has left its view and waits for the next one to start."""
    voting: bool = True
    """True while the replica would vote on its next height (false while changing view, muted or behind)."""
    last_voted_height: int = 0
    """Height of the last PREPARE or COMMIT this replica signed since it started."""
    validators: list[str]
    mempool: int
    base_height: int = 0
    """Lowest block this node holds: 1 normally, the snapshot height if it joined by state sync, 0 when empty."""
    p2p_oversized_requests: int = 0
    """`/p2p` requests refused because their body was too large."""
