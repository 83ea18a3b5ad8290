"""The records the OMS rules keep in the world state, each declared once.

Every record a rule stores is one of the shapes below, with its status values
spelled as `Literal`s, so the type checker follows each field from the rule
that writes it to every rule (and every reader outside the contracts) that
reads it. The shapes describe what is stored: the key of each record is built
in `contracts.keys`, its bytes are its canonical encoding (sorted keys), and a
field marked `NotRequired` is one that a later step adds to a record already
stored (a review decision, a decline reason, who approved a count).

This module holds types only, no behaviour: the runtime shares it with the
rules as it is, like `contracts.context`.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

OrderStatus = Literal[
    "created",
    "on_hold",
    "allocated",
    "backordered",
    "paid",
    "released",
    "intercepted",
    "partially_shipped",
    "shipped",
    "delivered",
    "completed",
    "return_requested",
    "returned",
    "refunded",
    "cancelled",
]
"""The states of an order (`lifecycle.TRANSITIONS` says which follows which)."""

FulfilmentStatus = Literal["allocated", "released", "picked", "shipped", "delivered", "declined", "cancelled"]
"""The states of a fulfilment (sub-order)."""

ReturnStatus = Literal["requested", "partially_received", "received", "cancelled", "expired"]
"""The states of a return."""

TransferStatus = Literal["in_transit", "received", "refused", "recalled"]
"""The states of a stock transfer."""

CountStatus = Literal["reported", "approved"]
"""The states of a stock count report."""

LocationType = Literal["store", "warehouse"]
"""What a distribution point is."""

PaymentTerms = Literal["prepaid", "on_account"]
"""How an order is paid: before it is released, or on account."""

ShippingState = Literal["open", "invoiced", "cancelled", "credited"]
"""Where an order's shipping charge stands."""

Rounding = Literal["line", "invoice"]
"""How tax is rounded: per line, or per invoice and rate."""

Bucket = Literal["sellable", "damaged"]
"""Where goods are counted."""

PaymentKind = Literal["authorized", "captured", "refunded"]
"""What a payment event records."""

JournalKind = Literal[
    "receipt",
    "shipment",
    "adjustment",
    "transfer_out",
    "transfer_in",
    "transfer_back",
    "return_in",
    "reservation",
    "release",
    "virtual_outbound",
]
"""What a stock journal entry records."""


# catalogue


class Sku(TypedDict):
    """A catalogue entry: `sku/<sku>`."""

    sku: str
    name: str
    price: int
    currency: str
    tax_class: str
    virtual: bool
    active: bool


class Location(TypedDict):
    """A distribution point: `location/<location>`."""

    location: str
    name: str
    type: LocationType
    org: str
    region: str
    lat: int
    lon: int
    ships_online: bool
    pickup_allowed: bool
    daily_capacity: int
    priority: int
    active: bool


# orders


class Item(TypedDict):
    """Units of one order line: demand to source, a backorder, or what a fulfilment serves."""

    line: int
    sku: str
    qty: int


class OrderLine(TypedDict):
    """A line of an order, priced when the order was taken."""

    sku: str
    qty: int
    unit_price: int
    discount: int
    tax_class: str
    virtual: bool
    invoiced: int
    """Units billed so far."""
    cancelled: int
    """Units cancelled so far."""
    tax_rate: int
    net: int
    tax: int
    gross: int


class PricedLine(TypedDict):
    """A line of an invoice or credit note, of a cancellation, or an order's shipping charge (`line` -1)."""

    sku: str
    line: int
    fulfilment: str
    qty: int
    unit_price: int
    discount: int
    tax_rate: int
    net: int
    tax: int
    gross: int


class Delivery(TypedDict):
    """Where an order's goods go."""

    region: str | None
    lat: int | None
    lon: int | None


HistoryEntry = TypedDict(
    "HistoryEntry",
    {
        "from": OrderStatus | None,
        "to": OrderStatus,
        "by": str,
        "tx_id": bytes | None,
        "height": int,
        "time_ms": int,
        "reason": str,
    },
)
"""One status change of an order (`by` is `ledger` and `tx_id` None for what the ledger did by itself)."""


class PaymentEvent(TypedDict):
    """A payment fact recorded on an order."""

    kind: PaymentKind
    amount: int
    reference: str
    tx_id: bytes
    height: int
    time_ms: int
    covers: NotRequired[list[list[Any]]]
    """Of a refund: the `[source, amount]` pairs it pays back (the cancellations or a credit note)."""


class Payment(TypedDict):
    """What was authorised, captured, refunded and cancelled of an order, and its credit notes."""

    authorized: int
    captured: int
    refunded: int
    cancelled: int
    credits: dict[str, int]
    """Credit note number -> its total."""
    refunded_by: dict[str, int]
    """Source (`cancellation` or a credit note number) -> what refunds paid back of it."""
    events: list[PaymentEvent]


class CancelledLine(TypedDict):
    line: int
    qty: int


class Cancellation(TypedDict):
    """Units of an order cancelled at once."""

    lines: list[CancelledLine]
    shipping: bool
    """Whether the shipping charge was cancelled with them."""
    amount: int
    reason: str
    by: str
    tx_id: bytes | None
    height: int
    time_ms: int


class Edit(TypedDict):
    """Who changed an order held in review."""

    by: str
    tx_id: bytes
    height: int
    time_ms: int


class Review(TypedDict):
    """An operator's decision on a held order."""

    decision: Literal["approved", "rejected"]
    by: str
    note: str


class Order(TypedDict):
    """An order: `order/<order_id>`."""

    order_id: str
    channel: str
    org: str
    external_ref: str
    customer_hash: str
    currency: str
    lines: list[OrderLine]
    delivery: Delivery | None
    pickup: str | None
    payment_terms: PaymentTerms
    shipping_charge: int
    shipping: PricedLine | None
    """The shipping charge as priced when the order was taken (None without one)."""
    shipping_state: ShippingState
    shipping_invoice: str | None
    prices_include_tax: bool
    rounding: Rounding
    total: int
    status: OrderStatus
    history: list[HistoryEntry]
    fulfilments: list[str]
    """Its fulfilment ids, in creation order."""
    fulfilment_count: int
    backorder: list[Item]
    declined_at: list[str]
    released: bool
    hold_reasons: list[str]
    payment: Payment
    cancellations: list[Cancellation]
    returns: list[str]
    exchange_of: str | None
    awaiting_return: bool
    edits: list[Edit]
    created_ms: int
    deadline_ms: int | None
    """Block time by which a prepaid order must be paid (None once paid, or while it needs no payment)."""
    metadata: dict[str, str]
    """The channel's own data, as sent (bounded: `orders.MAX_METADATA_KEYS` keys)."""
    tags: list[str]
    """The channel's labels, as sent (bounded: `orders.MAX_TAGS`)."""
    review: NotRequired[Review]


# fulfilments


class FulfilmentLine(TypedDict):
    """Units of one order line a fulfilment serves."""

    line: int
    sku: str
    qty: int
    lots: NotRequired[list[list[Any]]]
    """Once shipped: the `[lot, units]` pairs that left."""


class FulfilmentEvent(TypedDict):
    status: FulfilmentStatus
    by: str
    tx_id: bytes | None
    height: int
    time_ms: int


class ReturnedPart(TypedDict):
    """Units of a fulfilment line a return takes back."""

    line: int
    qty: int
    return_id: str


class PersonalRecord(TypedDict):
    """An order's sealed ship-to and notes: `personal/<order_id>` (see `contracts.personal`)."""

    order_id: str
    org: str
    """The ordering organisation: it alone grants and erases."""
    commitment: str
    """Hex sha256 of the salted plaintext (kept after erasure)."""
    ciphertext: str
    """Hex nonce and ciphertext; empty once erased."""
    keys: dict[str, dict[str, str]]
    """Organisation -> its wrap of the data key (`ephemeral`, `wrapped`, hex); empty once erased."""
    erased_ms: int | None
    """Block time of the erasure (None while the data may be read)."""


class Fulfilment(TypedDict):
    """A sub-order served by one location: `fulfilment/<order>-<n>`."""

    fulfilment_id: str
    order_id: str
    location: str
    org: str
    virtual: bool
    lines: list[FulfilmentLine]
    status: FulfilmentStatus
    events: list[FulfilmentEvent]
    carrier: str
    tracking: str
    invoice: str | None
    returned: list[ReturnedPart]
    decline_reason: NotRequired[str]


# returns


class ReturnLine(TypedDict):
    """Units of one fulfilment line that a return awaits."""

    fulfilment: str
    line: int
    sku: str
    qty: int
    received: int


class ReturnReceipt(TypedDict):
    sku: str
    qty: int
    condition: Bucket
    tx_id: bytes


class Return(TypedDict):
    """A return: `return/<order>-R<n>`."""

    return_id: str
    order_id: str
    status: ReturnStatus
    reference: str
    reason: str
    lines: list[ReturnLine]
    exchange_order: str | None
    receipts: list[ReturnReceipt]
    credit_notes: list[str]
    deadline_ms: int
    tx_id: bytes
    height: int
    time_ms: int
    location: NotRequired[str]
    """Where the goods last came back."""


# invoices and credit notes


class Document(TypedDict):
    """An invoice or a credit note (`credit_note`): `invoice/<issuer>/<seq>`."""

    number: str
    seq: int
    issuer: str
    order_id: str
    currency: str
    credit_note: bool
    refers_to: str | None
    """Of a credit note: the invoice it credits."""
    reissue_of: str | None
    """Of a reissued invoice: the invoice it replaces."""
    reason: str
    fulfilments: list[str]
    prices_include_tax: bool
    rounding: Rounding
    lines: list[PricedLine]
    net_total: int
    tax_total: int
    total: int
    tx_id: bytes | None
    height: int
    time_ms: int


class Credited(TypedDict):
    """How much of an invoice is credited: `credited/<number>`."""

    qty: list[int]
    """Units credited of each invoice line."""
    total: int


# stock


class Stock(TypedDict):
    """The stock position of one SKU at one location: `stock/<location>/<sku>`."""

    location: str
    sku: str
    on_hand: int
    reserved: int
    damaged: int
    safety: int
    seq: int
    """Sequence number of its latest journal entry."""
    lots: list[list[Any]]
    """The `[lot, units]` pairs on hand, in receipt order."""


class JournalEntry(TypedDict):
    """One stock movement: `journal/<location>/<sku>/<seq>`."""

    seq: int
    location: str
    sku: str
    kind: JournalKind
    delta: int
    reserved_delta: int
    bucket: Bucket
    lot: str
    document: str
    reason: str
    tx_id: bytes | None
    height: int
    time_ms: int


class TransferLine(TypedDict):
    sku: str
    qty: int
    lot: str


class TransferEvent(TypedDict):
    status: TransferStatus
    by: str
    tx_id: bytes
    height: int


Transfer = TypedDict(
    "Transfer",
    {
        "transfer_id": str,
        "from": str,
        "to": str,
        "document": str,
        "lines": list[TransferLine],
        "status": TransferStatus,
        "events": list[TransferEvent],
        "reason": NotRequired[str],
    },
)
"""Goods between two locations: `transfer/<transfer_id>`."""


class Difference(TypedDict):
    sku: str
    ledger: int
    counted: int
    difference: int


class Counted(TypedDict):
    sku: str
    qty: int


class CountReport(TypedDict):
    """A physical count and its differences: `count/<location>/<tx id>`."""

    location: str
    reference: str
    counted: int
    counts: list[Counted]
    """What was counted of each SKU (a SKU stocked but not counted by a `full` count is counted as 0)."""
    differences: list[Difference]
    """The differences against the stock when it was counted (for the report; approval compares again)."""
    tx_id: bytes
    height: int
    time_ms: int
    status: CountStatus
    approved_by: NotRequired[str]
    posted: NotRequired[list[Difference]]
    """The differences against the stock when it was approved: what was posted."""
