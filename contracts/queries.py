"""Read-only answers for the node API: orders, inventory, the stock journal, invoices, lots.

Every function reads through a `StateView` and returns JSON-ready data: bytes
(tx ids) become lowercase hex, everything else is already str/int/bool/list/map.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.inventory import compute_available
from contracts.lifecycle import get_fulfilment
from ledger.state import StateView


def to_json(value: Any) -> Any:
    """`value` with every bytes turned into hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def get_order(state: StateView, order_id: str) -> dict[str, Any] | None:
    """An order with its history, its fulfilments in full and its invoice numbers."""
    if "/" in order_id:
        return None
    order = state.get(keys.order_key(order_id))
    if order is None:
        return None
    order["fulfilments"] = [get_fulfilment(state, fid) for fid in order["fulfilments"]]
    order["invoices"] = [number for _, number in state.scan(keys.order_invoice_prefix(order_id))]
    return to_json(order)


def _stock_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": record["location"],
        "sku": record["sku"],
        "on_hand": record["on_hand"],
        "reserved": record["reserved"],
        "available": compute_available(record),
        "damaged": record["damaged"],
        "lots": [{"lot": lot, "qty": qty} for lot, qty in record["lots"]],
    }


def list_inventory(state: StateView, location: str | None = None, sku: str | None = None) -> list[dict[str, Any]]:
    """Current stock per location and SKU, optionally filtered."""
    rows = []
    for _, record in state.scan(keys.stock_prefix(location)):
        if (location is None or record["location"] == location) and (sku is None or record["sku"] == sku):
            rows.append(_stock_row(record))
    return rows


def list_journal(state: StateView, location: str | None = None, sku: str | None = None) -> list[dict[str, Any]]:
    """Journal entries in (location, SKU, sequence) order, optionally filtered."""
    prefix = keys.journal_prefix(location, sku if location is not None else None)
    return [
        to_json(entry)
        for _, entry in state.scan(prefix)
        if (location is None or entry["location"] == location) and (sku is None or entry["sku"] == sku)
    ]


def list_invoices(state: StateView, order_id: str | None = None) -> list[dict[str, Any]]:
    """Invoices and credit notes (marked `credit_note`), of one order or all, by issuer and number."""
    if order_id is None:
        return [to_json(document) for _, document in state.scan(keys.invoice_prefix())]
    documents = []
    for _, number in state.scan(keys.order_invoice_prefix(order_id)):
        issuer, _, seq = number.rpartition("-")
        documents.append(to_json(state.get(keys.invoice_key(issuer, int(seq)))))
    return documents


def get_stock_at(state: StateView, location: str, sku: str, height: int) -> dict[str, Any]:
    """Stock of one location and SKU as it was after block `height` (sum of the journal up to it)."""
    on_hand = reserved = damaged = 0
    for _, entry in state.scan(keys.journal_prefix(location, sku)):
        if entry["height"] > height:
            break
        if entry["bucket"] == "damaged":
            damaged += entry["delta"]
        else:
            on_hand += entry["delta"]
        reserved += entry["reserved_delta"]
    return {
        "location": location,
        "sku": sku,
        "height": height,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "damaged": damaged,
    }


def trace_lot(state: StateView, lot: str) -> list[dict[str, Any]]:
    """Every journal entry that moved `lot`, in block order: receipt, transfers, shipments."""
    entries = [entry for _, entry in state.scan(keys.journal_prefix()) if entry["lot"] == lot]
    entries.sort(key=lambda e: (e["height"], e["time_ms"], e["location"], e["seq"]))
    return [to_json(entry) for entry in entries]


def get_return(state: StateView, return_id: str) -> dict[str, Any] | None:
    record = state.get(keys.return_key(return_id))
    return None if record is None else to_json(record)


def get_count_reports(state: StateView, location: str) -> list[dict[str, Any]]:
    """Stock-count reconciliation reports of a location."""
    return [to_json(report) for _, report in state.scan(keys.count_prefix(location))]
