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
    valid_until: int = Field(
        description="Last height of a block that may take this tx (at most 10,000 beyond the next block);"
        " `tx_valid_until` of `GET /v1/status` is a sensible value"
    )
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
    tx_valid_until: int
    """A `valid_until` for a tx signed now: the head height plus the default window of 1,000 blocks."""
    base_height: int = 0
    """Lowest block this node holds: 1 normally, the snapshot height if it joined by state sync, 0 when empty."""
    p2p_oversized_requests: int = 0
    """`/p2p` requests refused because their body was too large."""


class Record(BaseModel):
    """A ledger record as JSON: the fields below are always there; fields added by newer rules pass through."""

    model_config = ConfigDict(extra="allow")


class StockRow(Record):
    location: str
    sku: str
    on_hand: int
    reserved: int
    available: int = Field(description="on hand minus reserved")
    damaged: int
    lots: list[dict[str, Any]] = Field(description="on hand per lot, in receipt order: `{lot, qty}`")


class StockAt(Record):
    location: str
    sku: str
    height: int
    on_hand: int
    reserved: int
    available: int
    damaged: int


class JournalEntry(Record):
    seq: int = Field(description="sequence of this entry among its location's and SKU's")
    location: str
    sku: str
    kind: str = Field(examples=["receipt", "reservation", "shipment"])
    delta: int
    reserved_delta: int
    bucket: str
    lot: str
    document: str
    tx_id: str | None = Field(description="the tx that moved the stock; null when the ledger did it by itself")
    height: int
    time_ms: int


class Invoice(Record):
    number: str
    issuer: str
    order_id: str
    currency: str
    credit_note: bool
    lines: list[dict[str, Any]]
    net_total: int
    tax_total: int
    total: int
    height: int
    time_ms: int


class Order(Record):
    order_id: str
    channel: str
    org: str
    external_ref: str
    status: str
    currency: str
    total: int
    lines: list[dict[str, Any]]
    history: list[dict[str, Any]] = Field(description="every status change: from, to, by, tx_id, height, time_ms")
    fulfilments: list[dict[str, Any]]
    invoices: list[str] = Field(description="numbers of the order's invoices and credit notes")
    created_ms: int


class OrderSummary(BaseModel):
    """An order as lists show it; `GET /v1/orders/{order_id}` has the rest."""

    order_id: str
    channel: str
    org: str
    external_ref: str
    status: str
    currency: str
    total: int
    created_ms: int
    updated_ms: int | None = Field(description="block time of the last change to the order or its fulfilments")
    locations: list[str] = Field(description="locations of its fulfilments")
