"""Cancellation: of a whole order before anything ships, of some units of its lines, or of what is left unshipped.

What can be cancelled of a line is what has not left: its backordered units
first, then units reserved in open fulfilments, newest fulfilment first (their
reservation is released, and a fulfilment left with nothing is cancelled and
gives its location's daily capacity back), and
units of a virtual line not yet delivered. Goods that left are returned, not
cancelled.

Cancelled units take their share of the line's amounts fixed at order time
(`invoicing.take_line_share`), as invoiced units do, so what an order invoices
plus what it cancels is exactly its total. The shipping charge is cancelled
with the last goods that carry it when none of them was sent (virtual goods
carry it only in an order of nothing else). Each cancellation is recorded on
the order with its lines and amount; the amount lowers what is due and is what
a refund may pay back for it (`payments`).

An order with nothing left to ship or deliver is `cancelled` if nothing was
sent, and otherwise follows the goods that were (`shipped`, `delivered`).
"""

from __future__ import annotations

from contracts import keys
from contracts.context import Context, TxContext
from contracts.errors import Rejected
from contracts.fulfilment import settle_order
from contracts.inventory import release_stock
from contracts.invoicing import take_line_share
from contracts.lifecycle import (
    OPEN_FULFILMENT,
    SENT_FULFILMENT,
    SYSTEM_ACTOR,
    end_fulfilment,
    get_order_fulfilments,
    put_fulfilment,
    transition_order,
)
from contracts.records import Cancellation, Item, Order
from ledger.state import StateView

Quantities = list[tuple[int, int]]
"""(order line index, units) pairs."""


def compute_open_quantities(state: StateView, order: Order) -> list[int]:
    """Units of each line that are neither sent nor cancelled yet."""
    sent = [0] * len(order["lines"])
    for record in get_order_fulfilments(state, order):
        if record["status"] in SENT_FULFILMENT:
            for part in record["lines"]:
                sent[part["line"]] += part["qty"]
    return [line["qty"] - line["cancelled"] - sent[i] for i, line in enumerate(order["lines"])]


def _take(parts: list[Item], index: int, wanted: int) -> list[tuple[Item, int]]:
    """Take up to `wanted` units of line `index` out of `parts` (dropping emptied parts); what was taken."""
    taken = []
    for part in list(parts):
        if wanted == 0:
            break
        if part["line"] != index:
            continue
        qty = min(wanted, part["qty"])
        part["qty"] -= qty
        wanted -= qty
        taken.append((part, qty))
        if part["qty"] == 0:
            parts.remove(part)
    return taken


def withdraw_units(state: StateView, ctx: Context, order: Order, index: int, qty: int) -> None:
    """Take `qty` unsent units of line `index` out of the backorder, then out of open fulfilments (an order not
    allocated yet has them in neither)."""
    left = qty - sum(taken for _, taken in _take(order["backorder"], index, qty))
    for record in reversed(get_order_fulfilments(state, order)):
        if left == 0:
            break
        if record["status"] not in OPEN_FULFILMENT:
            continue
        for part, taken in _take(record["lines"], index, left):
            if not record["virtual"]:
                release_stock(state, ctx, record["location"], part["sku"], taken, record["fulfilment_id"])
            left -= taken
        if not record["lines"]:
            end_fulfilment(state, ctx, record, "cancelled")
        put_fulfilment(state, record)
    if left and order["status"] not in ("created", "on_hold"):
        raise RuntimeError(
            f"line {index} of {order['order_id']}: {left} open units are neither backordered nor reserved"
        )


def cancel_quantities(state: StateView, ctx: Context, order: Order, wanted: Quantities, reason: str) -> Cancellation:
    """Cancel `qty` unsent units of line `index` for each (index, qty), or refuse; record and return the
    cancellation. The caller puts the order."""
    open_qty = compute_open_quantities(state, order)
    lines = []
    for index, qty in wanted:
        if not 0 <= index < len(order["lines"]):
            raise Rejected("bad_payload", f"order {order['order_id']} has no line {index}")
        if qty > open_qty[index]:
            raise Rejected("not_cancellable", f"line {index} has {open_qty[index]} units that have not left")
        open_qty[index] -= qty
        withdraw_units(state, ctx, order, index, qty)
        lines.append(take_line_share(order, index, qty, ""))
        order["lines"][index]["cancelled"] += qty
    nothing_left = not any(open_qty)
    sent = [record for record in get_order_fulfilments(state, order) if record["status"] in SENT_FULFILMENT]
    nothing_sent = not sent
    all_virtual = all(line["virtual"] for line in order["lines"])
    carriers = [i for i, line in enumerate(order["lines"]) if all_virtual or not line["virtual"]]
    carriers_left = any(open_qty[i] for i in carriers) or any(all_virtual or not r["virtual"] for r in sent)
    if not carriers_left and order["shipping_state"] == "open" and order["shipping"] is not None:
        lines.append(order["shipping"])
        order["shipping_state"] = "cancelled"
    cancellation: Cancellation = {
        "lines": [{"line": line["line"], "qty": line["qty"]} for line in lines if line["line"] >= 0],
        "shipping": any(line["line"] < 0 for line in lines),
        "amount": sum(line["gross"] for line in lines),
        "reason": reason,
        "by": ctx.signer.id if isinstance(ctx, TxContext) else SYSTEM_ACTOR,
        "tx_id": ctx.tx_id if isinstance(ctx, TxContext) else None,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
    }
    order["cancellations"].append(cancellation)
    order["payment"]["cancelled"] += cancellation["amount"]
    if nothing_left and nothing_sent:
        transition_order(order, "cancelled", ctx, reason)
        order["backorder"] = []
        if order["deadline_ms"] is not None:
            state.delete(keys.unpaid_key(order["deadline_ms"], order["order_id"]))
            order["deadline_ms"] = None
    else:
        settle_order(state, ctx, order)
    return cancellation


def cancel_order(state: StateView, ctx: Context, order: Order, reason: str) -> Cancellation:
    """Cancel everything of the order that has not left (the whole order if nothing has), or refuse."""
    wanted = [(index, qty) for index, qty in enumerate(compute_open_quantities(state, order)) if qty > 0]
    if not wanted or order["status"] == "cancelled":
        raise Rejected("already_shipped", f"order {order['order_id']} has nothing left to cancel; request a return")
    return cancel_quantities(state, ctx, order, wanted, reason)
