"""Pydantic models of the API boundary (the ledger has its own types; these only travel over HTTP).

The models of stored records (orders, fulfilments, returns, transfers, counts, invoices, the journal, the
catalogue) are derived from their declared types (`node.api.records`); statuses anywhere are `Literal`s, so
the OpenAPI lists their values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts import records
from contracts.governance import ProposalStatus
from contracts.records import OrderStatus
from node.api.records import Record, derive_model
from node.feed import EVENT_TYPES
from node.notify.outbox import DeliveryStatus

Item = TypeVar("Item")
Resource = TypeVar("Resource")


TxState = Literal["pending", "committed", "rejected", "dropped"]
"""Where a tx stands (`GET /v1/tx/{tx_id}`)."""

WriteState = Literal["pending", "committed", "rejected"]
"""What became of a write (`WriteResult`)."""

ImportState = Literal["pending", "committed", "rejected", "refused"]
"""What became of one order of an import (`refused`: not admitted)."""

if TYPE_CHECKING:
    Fulfilment = Record
    Order = Record
    Invoice = Record
    JournalEntry = Record
    Return = Record
    Transfer = Record
    CountReport = Record
    Sku = Record
    Location = Record
else:
    Fulfilment = derive_model(records.Fulfilment)
    Order = derive_model(records.Order, fulfilments=list[Fulfilment], invoices=list[str])
    """An order with its fulfilments in full and the numbers of its invoices and credit notes."""
    Invoice = derive_model(records.Document, "Invoice")
    JournalEntry = derive_model(records.JournalEntry)
    Return = derive_model(records.Return)
    Transfer = derive_model(records.Transfer)
    CountReport = derive_model(records.CountReport)
    Sku = derive_model(records.Sku)
    Location = derive_model(records.Location)


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
    status: TxState = "pending"


class TxBatchResult(BaseModel):
    tx_id: str
    accepted: bool
    error: str | None = None
    message: str | None = None


class Receipt(BaseModel):
    """What executing a tx gave: `ok`, a `code` and `message`, and the contract's `result`."""

    tx_id: str
    ok: bool
    code: str
    message: str
    result: dict[str, Any]


class TxStatus(BaseModel):
    tx_id: str
    status: TxState
    height: int | None = None
    index: int | None = None
    receipt: Receipt | None = None
    reason: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str


class Problem(BaseModel):
    """One part of a request that does not fit its route."""

    path: str = Field(examples=["query.status", "body.lines.0.qty"])
    problem: str


class CursorBeforeFeedBody(ErrorBody):
    """A feed cursor older than this node's feed (`cursor_before_feed`): read on from `first_cursor`."""

    first_cursor: str


class InvalidRequestBody(ErrorBody):
    """A request that does not fit its route (`invalid_request`), each part that does not fit in `fields`."""

    fields: list[Problem]


class Status(BaseModel):
    node_id: str
    chain_id: str
    role: str = "validator"
    """`validator` (votes) or `follower` (a member organisation's node that follows without voting)."""
    org: str = ""
    """The organisation running the node."""
    advertise: str = ""
    """Where the other nodes reach this one (what it announces)."""
    height: int
    head_hash: str
    state_root: str
    view: int
    primary: str
    view_changing: bool = False
    """True while the replica has left its view and waits for the next one to start."""
    voting: bool = True
    """True while the replica takes part: it signed a vote at one of its last few heights and would vote on its next
    (false while it only follows by sync, changes view, is muted, behind or halted)."""
    consensus_halted: str | None = None
    """Why the replica stopped signing (its consensus log could not be written; until restart), or null."""
    last_voted_height: int = 0
    """Height of the last PREPARE or COMMIT this replica signed (as its consensus log shows)."""
    validators: list[str]
    mempool: int
    tx_valid_until: int
    """A `valid_until` for a tx signed now: the head height plus the default window of 1,000 blocks."""
    base_height: int = 0
    """Lowest block this node holds: 1 normally, the snapshot height if it joined by state sync, 0 when empty."""
    p2p_oversized_requests: int = 0
    """`/p2p` requests refused because their body was too large."""


class StockRow(Record):
    location: str
    sku: str
    on_hand: int
    reserved: int
    available: int = Field(description="on hand minus reserved")
    damaged: int
    safety: int = Field(description="units allocation never reserves")
    lots: list[dict[str, Any]] = Field(description="on hand per lot, in receipt order: `{lot, qty}`")


class StockAt(Record):
    location: str
    sku: str
    height: int
    on_hand: int
    reserved: int
    available: int
    damaged: int


class OrderSummary(BaseModel):
    """An order as lists show it; `GET /v1/orders/{order_id}` has the rest."""

    order_id: str
    channel: str
    org: str
    external_ref: str
    status: OrderStatus
    currency: str
    total: int
    created_ms: int
    updated_ms: int | None = Field(description="block time of the last change to the order or its fulfilments")
    locations: list[str] = Field(description="locations of its fulfilments")


class Paged(BaseModel):
    """An answer that goes on in another page: ask again with `cursor` set to `next_cursor` until it is null."""

    next_cursor: str | None = None
    """Where the next page starts; null when this page ends the answer."""


class Page(Paged, Generic[Item]):
    """One page of a list (`node.api.pages` says how cursors work)."""

    items: list[Item]


class TraceStep(BaseModel):
    """One step of a lot's chain of custody: a stock journal entry that moved it."""

    sku: str
    lot: str
    location: str
    org: str | None = Field(description="the organisation of the location")
    kind: str = Field(description="`receipt`, `transfer_out`, `transfer_in`, `shipment`, `return_in`, ...")
    delta: int = Field(description="units in (positive) or out (negative)")
    bucket: str
    document: str = Field(description="the delivery note, transfer document, fulfilment or return")
    order_id: str | None = Field(description="the order that sold the lot (shipment) or took it back (return)")
    tx_id: str | None = Field(description="the tx that moved it (null: the ledger by itself)")
    height: int
    time_ms: int
    seq: int = Field(description="the entry's number in the journal of its location and SKU")
    proof: str | None = Field(
        default=None, description="with `proof=true`: the tx's proof text, for `omsnode verify-proof`"
    )


class Trace(Page[TraceStep]):
    """A lot's chain of custody, per SKU, each SKU's steps in the order the ledger made them."""

    lot: str


class WriteResult(BaseModel, Generic[Resource]):
    """What became of a write: the tx, its receipt once committed, and the resource as it then is."""

    tx_id: str
    status: WriteState
    height: int | None = None
    receipt: Receipt | None = None
    reason: str | None = Field(default=None, description="`code: message` of a rejected tx")
    resource: Resource | None = Field(default=None, description="the resource after the committed tx")


class Event(BaseModel):
    """One change: what (`type`, `data`), where in the chain (`height`, `block`), by which tx (null: by the
    ledger itself at the start of the block), and the `cursor` to resume after it."""

    cursor: str
    type: str = Field(examples=list(EVENT_TYPES))
    height: int
    block: str = Field(description="hash of the block, hex")
    time_ms: int = Field(description="the block's timestamp")
    tx_id: str | None
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[Event]
    next_cursor: str = Field(description="pass as `after` to read on; the same cursor when nothing was new")


class BlockHeader(Record):
    chain_id: str
    height: int
    prev_hash: str
    proposer: str
    view: int
    timestamp_ms: int
    tx_root: str
    state_root: str = Field(description="commitment of the state after this block")
    receipts_root: str
    validators_hash: str | None = Field(
        default=None, description="on the last block before a new validator set takes over: that set's hash"
    )


class BlockTx(Record):
    """A tx as a block holds it, with its id; the signed fields pass through."""

    id: str
    kind: str
    signer: str
    nonce: int
    payload: dict[str, Any]
    valid_until: int
    signature: str


class Certificate(BaseModel):
    """2f+1 validators' signed commits of a block."""

    block_hash: str
    height: int
    view: int
    signatures: list[tuple[str, str]] = Field(description="`[validator id, signature hex]` pairs")


class Block(BaseModel):
    """A committed block: its header, its txs with the receipt of each beside it, its commit certificate."""

    height: int
    hash: str
    header: BlockHeader
    txs: list[BlockTx]
    receipts: list[Receipt | None] = Field(description="`receipts[i]` is tx i's")
    certificate: Certificate | None


class Peer(BaseModel):
    """What a node knows of one peer."""

    id: str = Field(description="validator id")
    address: str = Field(description="base URL of the peer's node")
    reachable: bool | None = Field(description="after the last exchange; null before any")
    last_height_seen: int = Field(description="highest committed height the peer reported")
    rtt_ms: float | None = Field(description="smoothed round-trip time")
    msgs_in: int
    bytes_in: int
    msgs_out: int
    bytes_out: int
    errors: int = Field(description="failed exchanges: timeouts, refused connections, error statuses")
    last_error: str
    queue_dropped: int = Field(description="envelopes dropped: send queue full or retries spent")
    marked_bad: str = Field(description="why the node stopped syncing from the peer; empty while it trusts it")
    announced_seq: int = Field(0, description="sequence number of the peer's address record (0: genesis address)")
    announced_seen_ms: int = Field(0, description="when that record was last seen, ms since the epoch (0: never)")


class OrderHistory(BaseModel):
    """Everything that happened to an order, each step with `by`, `tx_id` (null: the ledger itself), `height`
    and `time_ms`."""

    order_id: str
    status: OrderStatus
    history: list[derive_model(records.HistoryEntry)]  # type: ignore[valid-type]
    fulfilments: list[dict[str, Any]] = Field(description="each fulfilment's `events` (status changes)")
    payments: list[dict[str, Any]] = Field(description="authorised, captured and refunded amounts with references")
    cancellations: list[dict[str, Any]] = Field(description="lines, amount and reason of each cancellation")
    edits: list[dict[str, Any]]
    returns: list[str] = Field(description="ids of the order's returns")


class ImportItem(BaseModel):
    """What became of one order of an import."""

    index: int = Field(description="its place in the list sent")
    external_ref: str
    tx_id: str
    status: ImportState
    reason: str | None = Field(default=None, description="`code: message` of a rejected or refused order")
    order_id: str | None = None
    order_status: OrderStatus | None = None
    duplicate: bool | None = Field(default=None, description="the external_ref had placed this order before")


class ImportResult(BaseModel):
    items: list[ImportItem]


class Configuration(BaseModel):
    """The configuration every node applies: the defaults of the contracts overlaid with the values set on the
    ledger (`config.set` or governance)."""

    effective: dict[str, Any]
    set: dict[str, Any] = Field(description="the values set on the ledger")
    defaults: dict[str, Any]
    protected: list[str] = Field(description="keys only a governance proposal may change")
    contracts: dict[str, str] = Field(description="sha256 of the source of each contract module this node runs")


class InvoiceDocument(BaseModel):
    """An invoice or credit note arranged for printing. Amounts are integer minor units; tax rates are basis
    points (`tax_rate`) and percentages with two decimals (`tax_percent`)."""

    number: str
    sequence: int = Field(description="place in the issuer's unbroken sequence (shared by credit notes)")
    type: Literal["invoice", "credit_note"]
    issue_date: str = Field(description="YYYY-MM-DD (UTC) of the block that issued it")
    issued_ms: int
    seller: dict[str, Any] = Field(description="the issuing organisation: org, name")
    buyer: dict[str, Any] = Field(description="customer_hash, delivery region, pickup location")
    order: dict[str, Any] = Field(description="order_id, external_ref, channel, payment_terms")
    currency: str
    prices_include_tax: bool
    rounding: str = Field(description="tax rounded per `line` or per `invoice` and rate")
    lines: list[dict[str, Any]] = Field(
        description="position, description, sku, qty, unit_price, discount, tax_rate, tax_percent, net, tax, gross"
    )
    tax_summary: list[dict[str, Any]] = Field(description="net, tax and gross per tax rate")
    net_total: int
    tax_total: int
    total: int
    refers_to: str | None = Field(description="the invoice a credit note corrects")
    reissue_of: str | None = Field(description="the invoice this one replaces")
    reason: str
    shipments: list[dict[str, Any]] = Field(description="location, region, carrier and tracking of the goods")
    tx_id: str | None
    height: int


class StockDifference(BaseModel):
    sku: str
    snapshot: int
    ledger: int | None = Field(description="on hand (sellable) on the ledger at the snapshot's time")
    difference: int | None = Field(description="snapshot minus ledger")
    now: dict[str, int] = Field(description="on_hand, reserved and damaged on the ledger now")
    since: list[dict[str, Any]] = Field(description="journal entries of the SKU after the snapshot's time")
    problem: str | None = Field(description="too_many_movements: no ledger figure; use a later snapshot")


class StockReconciliation(BaseModel):
    location: str
    as_of_ms: int
    compared: int
    matched: int
    differences: list[StockDifference]


class DayTotals(BaseModel):
    org: str
    currency: str
    captured: int
    refunded: int
    invoiced: int
    credited: int


class FlaggedOrder(BaseModel):
    """An order whose paid (captured - refunded) and documented (invoiced - credited) amounts differ at the
    end of the day: `awaiting_invoice` (goods still to ship), `refund_due`, or `awaiting_payment`."""

    order_id: str
    org: str
    channel: str
    currency: str
    payment_terms: str
    status: OrderStatus = Field(description="the order's status at the end of the day")
    captured: int
    refunded: int
    invoiced: int
    credited: int
    difference: int = Field(description="paid minus documented")
    reason: str


class FinanceReconciliation(Paged):
    day: str
    organisations: list[DayTotals] = Field(description="what each organisation took in and documented that day")
    flagged: list[FlaggedOrder]
    next_cursor: str | None = Field(description="more orders of the day to check; null when all are checked")


class WebhookIn(BaseModel):
    """A new webhook subscription."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://erp.example.com/oms-hook"], description="the receiver")
    events: list[str] = Field(
        min_length=1, max_length=len(EVENT_TYPES), examples=[["order.created", "order.status"]], description="types"
    )
    secret: str | None = Field(
        default=None, description="16 to 128 printable characters that sign each delivery; by default a new one"
    )


class WebhookSubscription(BaseModel):
    """A webhook subscription; `secret` only in the answer that made it."""

    id: str
    url: str
    events: list[str]
    org: str = Field(description="the organisation whose events it receives")
    sees_all: bool = Field(description="made by an operator or auditor: it receives every organisation's events")
    created_ms: int
    created_by: str
    secret: str | None = None


class WebhookList(BaseModel):
    items: list[WebhookSubscription]


class WebhookDelivery(BaseModel):
    """One event sent (or to send) to one subscription."""

    id: str = Field(description="the `X-OMS-Delivery` header: the same on every attempt")
    subscription: str
    cursor: str = Field(description="the event's cursor in the feed")
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_ms: int | None = Field(description="when a pending delivery is tried next")
    created_ms: int
    last_status: int | None = Field(description="the receiver's HTTP status at the last attempt (null: none)")
    last_error: str
    done_ms: int | None


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDelivery]


class OrderMessage(BaseModel):
    """A customer message rendered from an order by the node's template of an event and channel."""

    order_id: str
    event: str
    channel: str
    subject: str | None = Field(description="the e-mail's subject; null for an SMS")
    text: str


class Proposal(BaseModel):
    """A governance proposal: what it changes, who approved it (one approval per organisation), where it stands."""

    id: str = Field(description="the proposing tx's id, hex")
    action: str = Field(examples=["validator.add"])
    params: dict[str, Any]
    proposer: str = Field(description="the identity that proposed it")
    height: int = Field(description="the block that opened it")
    status: ProposalStatus
    executed_height: int | None = Field(default=None, description="the block that carried it out")
    approvals: dict[str, str] = Field(description="approving organisation -> the identity that signed for it")
    counted: int = Field(description="approvals of organisations that are members now (what counts)")
    quorum: int = Field(description="approvals needed: two thirds of the member organisations, rounded up")


class ProposalList(BaseModel):
    items: list[Proposal]


class NewProposal(BaseModel):
    """The body of `POST /v1/governance/proposals`: the payload of `governance.propose`."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(examples=["org.add"])
    params: dict[str, Any] = Field(examples=[{"org": "org-4", "name": "Depot Lisbon"}])


class ValidatorEpoch(BaseModel):
    """A validator set and the first block it certifies."""

    from_height: int
    validators: list[dict[str, Any]] = Field(description="in order: id, org, public_key, roles, address")
    quorum: int


class Members(BaseModel):
    """The membership in force: organisations, client identities, and every validator set since genesis."""

    height: int = Field(description="the committed height this was read at")
    organisations: list[dict[str, str]] = Field(
        description="each `id`, `name` and `encryption_key` (the X25519 key its customers' data is sealed to)"
    )
    clients: list[dict[str, Any]]
    epochs: list[ValidatorEpoch] = Field(description="oldest first; the last may begin above `height`")
    validators: list[str] = Field(description="ids of the set that certifies the next block")
