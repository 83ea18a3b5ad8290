"""Reconciliation: the ledger against a WMS's or ERP's stock snapshot, and a day's money against its documents.

Stock: a snapshot says how many units of each SKU a location held at a time.
The ledger's stock at that time is today's on hand less the sellable journal
entries since (entries are appended in block order, so the first entry after
the time is found by bisecting the sequence numbers): what a request reads
grows with the movements since the snapshot, not with the journal's length.
Each SKU whose count differs is answered with the ledger's figure, the
difference, and the entries since, which often explain it (goods that moved
after the WMS took its snapshot). At most `MAX_SNAPSHOT_SKUS` SKUs per
snapshot and `MAX_SINCE` entries since per SKU: a SKU with more movements
since is answered without a ledger figure (`too_many_movements`), to be
reconciled against a later snapshot.

Money: per day, the amounts each organisation captured, refunded, invoiced
and credited (`node.finance`), and for every order whose money or documents
changed that day, whether what was paid (captured less refunded) equals what
was documented (invoiced less credited) at the end of the day; an order where
they differ is flagged with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts import keys
from contracts.inventory import get_stock
from contracts.invoicing import require_invoice
from contracts.queries import to_json
from ledger.errors import LedgerError
from ledger.state import StateView

MAX_SNAPSHOT_SKUS = 1000
"""Most SKUs one stock reconciliation compares (the snapshot's and, when full, those the ledger holds)."""

MAX_SINCE = 100
"""Most journal entries after the snapshot's time read per SKU."""

OPEN_STATES = ("created", "on_hold", "allocated", "backordered", "paid", "released", "intercepted", "partially_shipped")
"""Order states in which goods may still ship (and be invoiced)."""


class TooLarge(LedgerError):
    """A reconciliation over the work one request may do."""

    code = "too_large"


@dataclass(frozen=True)
class Snapshot:
    """What a WMS or ERP says a location held: units per SKU at a time (ms since the epoch)."""

    location: str
    as_of_ms: int
    counts: dict[str, int]
    full: bool = True
    """Whether SKUs the snapshot leaves out were held at 0 (False: only the snapshot's SKUs are compared)."""


def read_entry(state: StateView, location: str, sku: str, seq: int) -> dict[str, Any]:
    """Journal entry `seq` of `location` and `sku`, which exists up to the stock record's `seq`."""
    entry = state.get(keys.journal_key(location, sku, seq))
    if entry is None:
        raise LedgerError(f"journal of {sku} at {location} has no entry {seq} below its last")
    return dict(entry)


def find_first_after(state: StateView, location: str, sku: str, last_seq: int, as_of_ms: int) -> int:
    """The sequence number of the first journal entry of `location` and `sku` after `as_of_ms` (`last_seq + 1`
    when there is none), by bisection: entries are in block order."""
    low, high = 1, last_seq + 1
    while low < high:
        middle = (low + high) // 2
        if read_entry(state, location, sku, middle)["time_ms"] > as_of_ms:
            high = middle
        else:
            low = middle + 1
    return low


def compare_sku(state: StateView, snapshot: Snapshot, sku: str) -> dict[str, Any] | None:
    """The difference of one SKU, or None when the snapshot and the ledger agree."""
    record = get_stock(state, snapshot.location, sku)
    first = find_first_after(state, snapshot.location, sku, record["seq"], snapshot.as_of_ms)
    counted = snapshot.counts.get(sku, 0)
    now = {"on_hand": record["on_hand"], "reserved": record["reserved"], "damaged": record["damaged"]}
    if record["seq"] - first + 1 > MAX_SINCE:
        return {
            "sku": sku,
            "snapshot": counted,
            "ledger": None,
            "difference": None,
            "now": now,
            "since": [],
            "problem": "too_many_movements",
        }
    since = [read_entry(state, snapshot.location, sku, seq) for seq in range(first, record["seq"] + 1)]
    ledger = record["on_hand"] - sum(entry["delta"] for entry in since if entry["bucket"] == "sellable")
    if ledger == counted:
        return None
    return {
        "sku": sku,
        "snapshot": counted,
        "ledger": ledger,
        "difference": counted - ledger,
        "now": now,
        "since": to_json(since),
        "problem": None,
    }


def reconcile_stock(state: StateView, snapshot: Snapshot) -> dict[str, Any]:
    """Every SKU where the snapshot and the ledger's on hand (sellable) at the snapshot's time differ."""
    skus = set(snapshot.counts)
    if snapshot.full:
        for _, record in state.scan(keys.stock_prefix(snapshot.location)):
            skus.add(record["sku"])
            if len(skus) > MAX_SNAPSHOT_SKUS:
                break
    if len(skus) > MAX_SNAPSHOT_SKUS:
        raise TooLarge(
            f"more than {MAX_SNAPSHOT_SKUS} SKUs to compare at {snapshot.location}: send the snapshot in parts "
            "with full=false"
        )
    differences = [d for d in (compare_sku(state, snapshot, sku) for sku in sorted(skus)) if d is not None]
    return {
        "location": snapshot.location,
        "as_of_ms": snapshot.as_of_ms,
        "compared": len(skus),
        "matched": len(skus) - len(differences),
        "differences": differences,
    }


def check_order_money(state: StateView, order_id: str, until_ms: int) -> dict[str, Any] | None:
    """An order's money at `until_ms` (exclusive): paid and documented, flagged with a reason when they differ;
    None when they agree (or there is no such order)."""
    order: dict[str, Any] | None = state.get(keys.order_key(order_id))
    if order is None:
        return None
    events = [event for event in order["payment"]["events"] if event["time_ms"] < until_ms]
    captured = sum(event["amount"] for event in events if event["kind"] == "captured")
    refunded = sum(event["amount"] for event in events if event["kind"] == "refunded")
    invoiced = credited = 0
    for _, number in state.scan(keys.order_invoice_prefix(order_id)):
        document = require_invoice(state, number)
        if document["time_ms"] < until_ms:
            if document["credit_note"]:
                credited += document["total"]
            else:
                invoiced += document["total"]
    paid, documented = captured - refunded, invoiced - credited
    if paid == documented:
        return None
    steps = [step for step in order["history"] if step["time_ms"] < until_ms]
    status = steps[-1]["to"] if steps else order["status"]
    if paid < documented:
        reason = "awaiting_payment"
    elif status in OPEN_STATES:
        reason = "awaiting_invoice"
    else:
        reason = "refund_due"
    return {
        "order_id": order_id,
        "org": order["org"],
        "channel": order["channel"],
        "currency": order["currency"],
        "payment_terms": order["payment_terms"],
        "status": status,
        "captured": captured,
        "refunded": refunded,
        "invoiced": invoiced,
        "credited": credited,
        "difference": paid - documented,
        "reason": reason,
    }
