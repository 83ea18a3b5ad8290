"""Inventory and the stock journal: every change of stock is an entry, and stock is their sum.

Per location and SKU the ledger keeps on hand (sellable), reserved (promised to
open fulfilments), damaged (a separate bucket for returned goods that cannot be
sold) and the on-hand quantity per lot in receipt order. Available is on hand
minus reserved and never goes below zero: a movement that would oversell is
refused with `insufficient_stock`.

Every change writes a journal entry (receipt, shipment, adjustment, transfer
out/in, return in, reservation, release, virtual outbound) with the tx id,
height and block time and the document it came from, so on hand equals the
sum of the sellable deltas, reserved equals the sum of the reserved deltas,
and stock as of any past height is the sum of the entries up to it. Lots given
on receipts are consumed first-in first-out (or by name) and their entries name
the lot, so one lot can be traced from receipt through transfers to shipments.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.catalogue import VIRTUAL_LOCATION, require_location, require_location_access, require_sku
from contracts.context import BlockContext, TxContext
from contracts.errors import Rejected
from contracts.payload import MAX_QTY, bad, get_choice, get_id, get_int, get_list, get_optional_id, get_qty, get_text
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "stock.receive": frozenset({"store", "operator"}),
    "stock.adjust": frozenset({"store", "operator"}),
    "stock.transfer": frozenset({"store", "operator"}),
    "stock.count": frozenset({"store", "operator"}),
}

JOURNAL_KINDS = (
    "receipt",
    "shipment",
    "adjustment",
    "transfer_out",
    "transfer_in",
    "return_in",
    "reservation",
    "release",
    "virtual_outbound",
)
"""Every kind of journal entry."""

BUCKETS = ("sellable", "damaged")
"""Where goods are counted: sellable (on hand) or damaged."""

Context = TxContext | BlockContext


def get_stock(state: StateView, location: str, sku: str) -> dict[str, Any]:
    """The stock record of one location and SKU (zeros if never touched)."""
    record = state.get(keys.stock_key(location, sku))
    if record is None:
        return {"location": location, "sku": sku, "on_hand": 0, "reserved": 0, "damaged": 0, "seq": 0, "lots": []}
    return record


def compute_available(record: dict[str, Any]) -> int:
    return int(record["on_hand"]) - int(record["reserved"])


def post_entry(
    state: StateView,
    ctx: Context,
    location: str,
    sku: str,
    kind: str,
    document: str,
    delta: int = 0,
    reserved_delta: int = 0,
    bucket: str = "sellable",
    lot: str = "",
    reason: str = "",
) -> dict[str, Any]:
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
    entry = {
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
    state.put(keys.stock_key(location, sku), record)
    state.put(keys.journal_key(location, sku, record["seq"]), entry)
    return entry


def _move_lot(record: dict[str, Any], lot: str, delta: int) -> None:
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


def compute_lot_split(record: dict[str, Any], qty: int, lot: str | None) -> list[tuple[str, int]]:
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
    state: StateView, ctx: Context, location: str, sku: str, qty: int, kind: str, document: str, **extra: Any
) -> list[dict[str, Any]]:
    return [post_entry(state, ctx, location, sku, kind, document, delta=qty, **extra)]


def remove_stock(
    state: StateView,
    ctx: Context,
    location: str,
    sku: str,
    qty: int,
    kind: str,
    document: str,
    lot: str | None = None,
    reserved: bool = False,
    reason: str = "",
) -> list[dict[str, Any]]:
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


def process_stock_receive(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Goods arrive at a location (optionally by lot) against a document such as a purchase order."""
    location = get_id(tx.payload, "location")
    require_location_access(ctx, require_location(state, location))
    document = get_text(tx.payload, "document", "")
    received = []
    for line in get_list(tx.payload, "lines"):
        sku = get_id(line, "sku")
        _require_physical(state, sku)
        qty = get_qty(line)
        lot = get_optional_id(line, "lot") or ""
        add_stock(state, ctx, location, sku, qty, "receipt", document, lot=lot)
        received.append({"sku": sku, "qty": qty, "lot": lot, "on_hand": get_stock(state, location, sku)["on_hand"]})
    return {"location": location, "received": received}


def process_stock_adjust(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """An explicit correction of on hand (or of the damaged bucket), with a reason."""
    payload = tx.payload
    location = get_id(payload, "location")
    require_location_access(ctx, require_location(state, location))
    sku = get_id(payload, "sku")
    _require_physical(state, sku)
    delta = get_int(payload, "delta", -MAX_QTY, MAX_QTY)
    if delta == 0:
        raise bad("delta must not be zero")
    reason = get_text(payload, "reason")
    if not reason:
        raise bad("an adjustment needs a reason")
    bucket = get_choice(payload, "bucket", BUCKETS, "sellable")
    lot = get_optional_id(payload, "lot")
    document = get_text(payload, "document", "")
    if delta > 0 or bucket == "damaged":
        post_entry(
            state, ctx, location, sku, "adjustment", document, delta, bucket=bucket, lot=lot or "", reason=reason
        )
    else:
        remove_stock(state, ctx, location, sku, -delta, "adjustment", document, lot=lot, reason=reason)
    record = get_stock(state, location, sku)
    return {"location": location, "sku": sku, "on_hand": record["on_hand"], "damaged": record["damaged"]}


def process_stock_transfer(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Move goods between two locations; lots travel with them."""
    payload = tx.payload
    source = get_id(payload, "from")
    target = get_id(payload, "to")
    if source == target:
        raise bad("a transfer needs two different locations")
    require_location_access(ctx, require_location(state, source))
    require_location(state, target)
    document = get_text(payload, "document", "")
    moved = []
    for line in get_list(payload, "lines"):
        sku = get_id(line, "sku")
        _require_physical(state, sku)
        qty = get_qty(line)
        for entry in remove_stock(state, ctx, source, sku, qty, "transfer_out", document, get_optional_id(line, "lot")):
            add_stock(state, ctx, target, sku, -entry["delta"], "transfer_in", document, lot=entry["lot"])
            moved.append({"sku": sku, "qty": -entry["delta"], "lot": entry["lot"]})
    return {"from": source, "to": target, "moved": moved}


def process_stock_count(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """A physical count (e.g. from a WMS): report the differences against the ledger, change nothing.

    With `full` set, SKUs stocked at the location but absent from the count are counted as zero.
    """
    payload = tx.payload
    location = get_id(payload, "location")
    require_location_access(ctx, require_location(state, location))
    counted: dict[str, int] = {}
    for line in get_list(payload, "counts", 1000):
        sku = get_id(line, "sku")
        if sku in counted:
            raise bad(f"SKU {sku} counted twice")
        counted[sku] = get_int(line, "qty", 0, MAX_QTY)
    if payload.get("full", False) is True:
        for _, record in state.scan(keys.stock_prefix(location)):
            if record["on_hand"] and record["sku"] not in counted:
                counted[record["sku"]] = 0
    differences = []
    for sku in sorted(counted):
        on_hand = get_stock(state, location, sku)["on_hand"]
        if counted[sku] != on_hand:
            differences.append(
                {"sku": sku, "ledger": on_hand, "counted": counted[sku], "difference": counted[sku] - on_hand}
            )
    report = {
        "location": location,
        "reference": get_text(payload, "reference", ""),
        "counted": len(counted),
        "differences": differences,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
    }
    state.put(keys.count_key(location, ctx.tx_id.hex()), report)
    return {"location": location, "counted": len(counted), "differences": differences}
