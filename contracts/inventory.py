"""Inventory and the stock journal: every change of stock is an entry, and stock is their sum.

Per location and SKU the ledger keeps on hand (sellable), reserved (promised to
open fulfilments), damaged (a separate bucket for returned goods that cannot be
sold), the on-hand quantity per lot in receipt order, and a safety stock that
allocation never takes. Available is on hand minus reserved and never goes
below zero: a movement that would oversell is refused with `insufficient_stock`.
Every write of a stock record keeps the allocatable index in step
(`allocatable/<sku>` lists, in id order, the locations where allocation may take
some of the SKU; it holds no quantity, so a reservation that leaves some stock
allocatable does not write it), so allocation reads the locations that hold a
SKU, in one read, rather than walking every location.

A receipt names its document (a delivery note, a purchase order): per
receiving location a document is taken once; sent again with the same lines
it answers the first result, with other lines it is refused with
`duplicate_reference` (`references`). A transfer's document is taken once per
sending location the same way. A transfer takes the goods out of the source
at once and holds them in transit until the receiving location accepts them
(they come in there) or refuses them (they go back): stock never enters a
location, let alone another organisation's, without its say. Goods on their
way to a location deactivated meanwhile can still be refused by an operator,
or recalled by the sender (`recalled`; they go back too). A count reports
differences; once an operator approves it, the counted quantities are
compared with the stock at that time and what differs is posted as
adjustments with its reason code, so two counts of one shelf never post a
shortage twice.

Every change writes a journal entry (receipt, shipment, adjustment, transfer
out/in, return in, reservation, release, virtual outbound) with the tx id,
height and block time and the document it came from, so on hand equals the
sum of the sellable deltas, reserved equals the sum of the reserved deltas,
and stock as of any past height is the sum of the entries up to it. Lots given
on receipts are consumed first-in first-out (or by name) and their entries name
the lot, so one lot can be traced from receipt through transfers to shipments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts import keys
from contracts.catalogue import (
    VIRTUAL_LOCATION,
    require_known_location,
    require_location,
    require_location_access,
    require_sku,
)
from contracts.context import Context, TxContext
from contracts.errors import Rejected
from contracts.numbering import compute_document_number
from contracts.payload import (
    MAX_QTY,
    bad,
    boolean,
    choice,
    ident,
    integer,
    is_id,
    items,
    payload,
    quantity,
    read_payload,
    text,
)
from contracts.records import (
    Bucket,
    Counted,
    CountReport,
    Difference,
    JournalEntry,
    JournalKind,
    Stock,
    Transfer,
    TransferLine,
    TransferStatus,
)
from contracts.references import hash_reference, recall, remember
from contracts.roles import roles_for
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for(
    "stock.receive",
    "stock.adjust",
    "stock.transfer",
    "stock.count",
    "stock.count.approve",
    "stock.transfer.accept",
    "stock.transfer.refuse",
    "stock.transfer.recall",
    "stock.safety",
)

JOURNAL_KINDS = (
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
)
"""Every kind of journal entry."""

BUCKETS = ("sellable", "damaged")
"""Where goods are counted: sellable (on hand) or damaged."""

COUNT_REASONS = ("shrinkage", "damage", "found", "miscount", "theft")
"""Reason codes an approved count posts its adjustments with."""

MOVED_LINES = items(
    "lines",
    ident("sku"),
    quantity(),
    ident("lot", required=False, doc="the lot received, or sent (first in, first out if absent)"),
)
"""The goods a receipt or transfer moves."""

PAYLOADS = {
    "stock.receive": payload(
        ident("location"),
        MOVED_LINES,
        text("document", default="", doc="delivery note or purchase order: taken once per location"),
    ),
    "stock.adjust": payload(
        ident("location"),
        ident("sku"),
        integer("delta", -MAX_QTY, MAX_QTY, doc="not 0"),
        text("reason", min_length=1),
        choice("bucket", BUCKETS, default="sellable"),
        ident("lot", required=False),
        text("document", default=""),
    ),
    "stock.transfer": payload(
        ident("from"),
        ident("to"),
        MOVED_LINES,
        text("document", default="", doc="the transfer number if empty"),
    ),
    "stock.transfer.accept": payload(ident("transfer_id"), text("reason", default="")),
    "stock.transfer.refuse": payload(ident("transfer_id"), text("reason", default="")),
    "stock.transfer.recall": payload(ident("transfer_id"), text("reason", default="")),
    "stock.count": payload(
        ident("location"),
        items("counts", ident("sku"), integer("qty", 0, MAX_QTY, doc="units counted"), max_items=1000),
        boolean("full", default=False, doc="SKUs stocked but not counted count as 0"),
        text("reference", default=""),
    ),
    "stock.count.approve": payload(
        ident("location"),
        text("count", doc="the count's tx id in hex"),
        choice("reason", COUNT_REASONS),
    ),
    "stock.safety": payload(
        ident("location"), ident("sku"), integer("qty", 0, MAX_QTY, doc="units allocation leaves, 0 = none")
    ),
}
"""The payload of each tx kind of this module."""


def get_stock(state: StateView, location: str, sku: str) -> Stock:
    """The stock record of one location and SKU (zeros if never touched)."""
    record: Stock | None = state.get(keys.stock_key(location, sku))
    if record is None:
        return {
            "location": location,
            "sku": sku,
            "on_hand": 0,
            "reserved": 0,
            "damaged": 0,
            "safety": 0,
            "seq": 0,
            "lots": [],
        }
    return record


def compute_available(record: Mapping[str, Any]) -> int:
    """On hand less reserved of a `Stock` record."""
    return int(record["on_hand"]) - int(record["reserved"])


def compute_allocatable(record: Stock) -> int:
    """What allocation may reserve: available less the safety stock."""
    return max(compute_available(record) - int(record["safety"]), 0)


def put_stock(state: StateView, record: Stock) -> None:
    """Write a stock record, and keep the allocatable index of its SKU in step with it: the location is listed
    exactly while allocation may take more than nothing there. The index holds no quantity, so it is written
    only when the stock crosses that line, not at every reservation."""
    location, sku = record["location"], record["sku"]
    state.put(keys.stock_key(location, sku), record)
    index = keys.allocatable_key(sku)
    listed: list[str] = state.get(index) or []
    if compute_allocatable(record) > 0:
        if location not in listed:
            state.put(index, sorted([*listed, location]))
    elif location in listed:
        listed.remove(location)
        if listed:
            state.put(index, listed)
        else:
            state.delete(index)


def get_allocatable(state: StateView, skus: list[str]) -> dict[str, list[str]]:
    """SKU -> the locations holding allocatable stock of it (in id order), for each of `skus`: read from the
    index alone (one record per SKU), so the locations holding none of them cost nothing."""
    return {sku: state.get(keys.allocatable_key(sku)) or [] for sku in dict.fromkeys(skus)}


def mark_restocked(state: StateView, sku: str) -> None:
    """Note that more of `sku` became available, for the next backorder re-sourcing pass (`allocation`)."""
    restocked = state.get(keys.RESTOCKED_KEY) or []
    if sku not in restocked:
        state.put(keys.RESTOCKED_KEY, sorted([*restocked, sku]))


def post_entry(
    state: StateView,
    ctx: Context,
    location: str,
    sku: str,
    kind: JournalKind,
    document: str,
    delta: int = 0,
    reserved_delta: int = 0,
    bucket: Bucket = "sellable",
    lot: str = "",
    reason: str = "",
) -> JournalEntry:
    """Apply one movement to the stock record and write its journal entry."""
    record = get_stock(state, location, sku)
    if bucket == "damaged":
        record["damaged"] += delta
    else:
        record["on_hand"] += delta
        _move_lot(record, lot, delta)
    record["reserved"] += reserved_delta
    if record["damaged"] < 0 or record["reserved"] < 0 or compute_available(record) < 0:
        raise Rejected("insufficient_stock", f"not enough {sku} available at {location}")
    record["seq"] += 1
    entry: JournalEntry = {
        "seq": record["seq"],
        "location": location,
        "sku": sku,
        "kind": kind,
        "delta": delta,
        "reserved_delta": reserved_delta,
        "bucket": bucket,
        "lot": lot,
        "document": document,
        "reason": reason,
        "tx_id": ctx.tx_id if isinstance(ctx, TxContext) else None,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
    }
    put_stock(state, record)
    state.put(keys.journal_key(location, sku, record["seq"]), entry)
    if (delta > 0 and bucket == "sellable") or reserved_delta < 0:
        mark_restocked(state, sku)
    return entry


def _move_lot(record: Stock, lot: str, delta: int) -> None:
    lots: list[list[Any]] = record["lots"]
    for pair in lots:
        if pair[0] == lot:
            pair[1] += delta
            if pair[1] < 0:
                raise Rejected("insufficient_stock", f"lot {lot or '(none)'} holds less than {-delta}")
            if pair[1] == 0:
                lots.remove(pair)
            return
    if delta < 0:
        raise Rejected("insufficient_stock", f"lot {lot or '(none)'} is not on hand")
    if delta > 0:
        lots.append([lot, delta])


def compute_lot_split(record: Stock, qty: int, lot: str | None) -> list[tuple[str, int]]:
    """Which lots `qty` units leave from: the named lot, or first received first out."""
    if lot is not None:
        return [(lot, qty)]
    split: list[tuple[str, int]] = []
    left = qty
    for name, held in record["lots"]:
        if left == 0:
            break
        take = min(left, held)
        split.append((name, take))
        left -= take
    if left:
        raise Rejected("insufficient_stock", f"not enough {record['sku']} on hand at {record['location']}")
    return split


def add_stock(
    state: StateView, ctx: Context, location: str, sku: str, qty: int, kind: JournalKind, document: str, **extra: Any
) -> list[JournalEntry]:
    return [post_entry(state, ctx, location, sku, kind, document, delta=qty, **extra)]


def remove_stock(
    state: StateView,
    ctx: Context,
    location: str,
    sku: str,
    qty: int,
    kind: JournalKind,
    document: str,
    lot: str | None = None,
    reserved: bool = False,
    reason: str = "",
) -> list[JournalEntry]:
    """Take `qty` out of on hand, lot by lot; `reserved` consumes a reservation as it goes."""
    split = compute_lot_split(get_stock(state, location, sku), qty, lot)
    return [
        post_entry(state, ctx, location, sku, kind, document, -q, -q if reserved else 0, lot=name, reason=reason)
        for name, q in split
    ]


def reserve_stock(state: StateView, ctx: Context, location: str, sku: str, qty: int, document: str) -> None:
    post_entry(state, ctx, location, sku, "reservation", document, reserved_delta=qty)


def release_stock(state: StateView, ctx: Context, location: str, sku: str, qty: int, document: str) -> None:
    post_entry(state, ctx, location, sku, "release", document, reserved_delta=-qty)


def record_virtual_outbound(state: StateView, ctx: Context, sku: str, qty: int, document: str) -> None:
    """Virtual goods leave without stock: a zero-delta entry that still names the tx and document."""
    post_entry(state, ctx, VIRTUAL_LOCATION, sku, "virtual_outbound", document, reason=f"qty {qty}")


def _require_physical(state: StateView, sku: str) -> None:
    if require_sku(state, sku)["virtual"]:
        raise Rejected("virtual_sku", f"SKU {sku} is virtual and holds no stock")


def process_stock_receive(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Goods arrive at a location (optionally by lot) against a document such as a purchase order; a document
    already taken at this location answers its first result."""
    fields = read_payload(PAYLOADS["stock.receive"], tx.payload)
    location = fields["location"]
    require_location_access(ctx, require_known_location(state, location))
    document = fields["document"]
    key = keys.document_key(location, hash_reference(document))
    known = recall(state, key, fields["lines"], document) if document else None
    if known is not None:
        return known
    require_location(state, location)
    received = []
    for line in fields["lines"]:
        sku = line["sku"]
        _require_physical(state, sku)
        qty = line["qty"]
        lot = line["lot"] or ""
        add_stock(state, ctx, location, sku, qty, "receipt", document, lot=lot)
        received.append({"sku": sku, "qty": qty, "lot": lot, "on_hand": get_stock(state, location, sku)["on_hand"]})
    result = {"location": location, "received": received, "duplicate": False}
    if document:
        remember(state, key, fields["lines"], result)
    return result


def process_stock_adjust(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """An explicit correction of on hand (or of the damaged bucket), with a reason."""
    fields = read_payload(PAYLOADS["stock.adjust"], tx.payload)
    delta = fields["delta"]
    if delta == 0:
        raise bad("delta must not be zero")
    location = fields["location"]
    require_location_access(ctx, require_location(state, location))
    sku = fields["sku"]
    _require_physical(state, sku)
    reason = fields["reason"]
    bucket = fields["bucket"]
    lot = fields["lot"]
    document = fields["document"]
    if delta > 0 or bucket == "damaged":
        post_entry(
            state, ctx, location, sku, "adjustment", document, delta, bucket=bucket, lot=lot or "", reason=reason
        )
    else:
        remove_stock(state, ctx, location, sku, -delta, "adjustment", document, lot=lot, reason=reason)
    record = get_stock(state, location, sku)
    return {"location": location, "sku": sku, "on_hand": record["on_hand"], "damaged": record["damaged"]}


def process_stock_transfer(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Send goods to another location: out of the source now, in transit until the receiver accepts them; a
    `document` already sent from the source answers its first result."""
    fields = read_payload(PAYLOADS["stock.transfer"], tx.payload)
    source = fields["from"]
    target = fields["to"]
    if source == target:
        raise bad("a transfer needs two different locations")
    require_location_access(ctx, require_known_location(state, source))
    key = keys.transfer_document_key(source, hash_reference(fields["document"]))
    known = recall(state, key, fields, fields["document"]) if fields["document"] else None
    if known is not None:
        return known
    require_location(state, source)
    require_location(state, target)
    transfer_id = compute_document_number("TR", ctx.height, ctx.tx_index)
    document = fields["document"] or transfer_id
    moved: list[TransferLine] = []
    for line in fields["lines"]:
        sku = line["sku"]
        _require_physical(state, sku)
        for entry in remove_stock(state, ctx, source, sku, line["qty"], "transfer_out", document, line["lot"]):
            moved.append({"sku": sku, "qty": -entry["delta"], "lot": entry["lot"]})
    record: Transfer = {
        "transfer_id": transfer_id,
        "from": source,
        "to": target,
        "document": document,
        "lines": moved,
        "status": "in_transit",
        "events": [{"status": "in_transit", "by": ctx.signer.id, "tx_id": ctx.tx_id, "height": ctx.height}],
    }
    state.put(keys.transfer_key(transfer_id), record)
    result = {
        "transfer_id": transfer_id,
        "from": source,
        "to": target,
        "status": "in_transit",
        "moved": moved,
        "duplicate": False,
    }
    if fields["document"]:
        remember(state, key, fields, result)
    return result


def require_transfer(state: StateView, transfer_id: str) -> Transfer:
    """A transfer still in transit; else `unknown_transfer` or `invalid_transition`."""
    record: Transfer | None = state.get(keys.transfer_key(transfer_id))
    if record is None:
        raise Rejected("unknown_transfer", f"transfer {transfer_id} does not exist")
    if record["status"] != "in_transit":
        raise Rejected("invalid_transition", f"transfer {transfer_id} is {record['status']}")
    return record


def _settle_transfer(
    state: StateView, ctx: TxContext, record: Transfer, status: TransferStatus, reason: str
) -> dict[str, Any]:
    """End a transfer: the goods come in at the receiver (`received`) or go back to the sender."""
    kind: JournalKind
    location, kind = (record["to"], "transfer_in") if status == "received" else (record["from"], "transfer_back")
    transfer_id = record["transfer_id"]
    for line in record["lines"]:
        add_stock(state, ctx, location, line["sku"], line["qty"], kind, record["document"], lot=line["lot"])
    record["status"] = status
    record["events"].append({"status": status, "by": ctx.signer.id, "tx_id": ctx.tx_id, "height": ctx.height})
    record["reason"] = reason
    state.put(keys.transfer_key(transfer_id), record)
    return {"transfer_id": transfer_id, "status": status, "location": location}


def process_stock_transfer_accept(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The receiving location takes the goods in (an inactive location takes nothing in)."""
    fields = read_payload(PAYLOADS["stock.transfer.accept"], tx.payload)
    record = require_transfer(state, fields["transfer_id"])
    require_location_access(ctx, require_location(state, record["to"]))
    return _settle_transfer(state, ctx, record, "received", fields["reason"])


def process_stock_transfer_refuse(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The receiving location (or an operator, even once it is deactivated) refuses the goods: they go back to
    the source."""
    fields = read_payload(PAYLOADS["stock.transfer.refuse"], tx.payload)
    record = require_transfer(state, fields["transfer_id"])
    require_location_access(ctx, require_known_location(state, record["to"]))
    return _settle_transfer(state, ctx, record, "refused", fields["reason"])


def process_stock_transfer_recall(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The sending location takes back goods on their way to a location deactivated meanwhile (an active one
    decides on them itself)."""
    fields = read_payload(PAYLOADS["stock.transfer.recall"], tx.payload)
    record = require_transfer(state, fields["transfer_id"])
    require_location_access(ctx, require_known_location(state, record["from"]))
    if require_known_location(state, record["to"])["active"]:
        raise Rejected("invalid_transition", f"location {record['to']} is active: it accepts or refuses the goods")
    return _settle_transfer(state, ctx, record, "recalled", fields["reason"])


def process_stock_safety(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Set the safety stock of a SKU at a location: units allocation leaves for the shop floor. Lowering it
    makes more available to allocation, so the backorders waiting for the SKU are sourced again."""
    fields = read_payload(PAYLOADS["stock.safety"], tx.payload)
    location = fields["location"]
    require_location_access(ctx, require_location(state, location))
    sku = fields["sku"]
    _require_physical(state, sku)
    record = get_stock(state, location, sku)
    allocatable = compute_allocatable(record)
    record["safety"] = fields["qty"]
    put_stock(state, record)
    if compute_allocatable(record) > allocatable:
        mark_restocked(state, sku)
    return {"location": location, "sku": sku, "safety": record["safety"]}


def compute_differences(state: StateView, location: str, counts: list[Counted]) -> list[Difference]:
    """How each count differs from the stock on hand at `location` now."""
    differences: list[Difference] = []
    for count in counts:
        sku, qty = count["sku"], count["qty"]
        on_hand = get_stock(state, location, sku)["on_hand"]
        if qty != on_hand:
            differences.append({"sku": sku, "ledger": on_hand, "counted": qty, "difference": qty - on_hand})
    return differences


def process_stock_count(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """A physical count (e.g. from a WMS): report the differences against the ledger, change nothing.

    With `full` set, SKUs stocked at the location but absent from the count are counted as zero.
    """
    fields = read_payload(PAYLOADS["stock.count"], tx.payload)
    location = fields["location"]
    require_location_access(ctx, require_location(state, location))
    counted: dict[str, int] = {}
    for line in fields["counts"]:
        sku = line["sku"]
        if sku in counted:
            raise bad(f"SKU {sku} counted twice")
        counted[sku] = line["qty"]
    if fields["full"]:
        for _, record in state.scan(keys.stock_prefix(location)):
            if record["on_hand"] and record["sku"] not in counted:
                counted[record["sku"]] = 0
    counts: list[Counted] = [{"sku": sku, "qty": counted[sku]} for sku in sorted(counted)]
    differences = compute_differences(state, location, counts)
    report: CountReport = {
        "location": location,
        "reference": fields["reference"],
        "counted": len(counted),
        "counts": counts,
        "differences": differences,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
        "status": "reported",
    }
    state.put(keys.count_key(location, ctx.tx_id.hex()), report)
    return {"location": location, "count": ctx.tx_id.hex(), "counted": len(counted), "differences": differences}


def process_stock_count_approve(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """An operator approves a count: how it differs from the stock now is posted as adjustments with a reason
    code (so a second count of the same shelf, approved after the first, posts only what is still off)."""
    fields = read_payload(PAYLOADS["stock.count.approve"], tx.payload)
    location = fields["location"]
    count = fields["count"]
    report: CountReport | None = state.get(keys.count_key(location, count)) if is_id(count) else None
    if report is None:
        raise Rejected("unknown_count", f"no count {count} at {location}")
    if report["status"] != "reported":
        raise Rejected("invalid_transition", f"count {count} is {report['status']}")
    reason = fields["reason"]
    posted = compute_differences(state, location, report["counts"])
    for difference in posted:
        sku, delta = difference["sku"], difference["difference"]
        if delta > 0:
            post_entry(state, ctx, location, sku, "adjustment", count, delta, reason=reason)
        else:
            remove_stock(state, ctx, location, sku, -delta, "adjustment", count, reason=reason)
    report["status"] = "approved"
    report["approved_by"] = ctx.signer.id
    report["posted"] = posted
    state.put(keys.count_key(location, count), report)
    return {"location": location, "count": count, "adjusted": len(posted), "posted": posted}
