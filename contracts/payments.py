"""Payment facts from the channel, and the cancellation of orders left unpaid.

The ledger does not move money: the channel records that a payment was
authorised, captured or refunded, with its amount and the payment provider's
reference. Capturing the order total releases a fully allocated order to its
locations. A prepaid order not paid within `orders.unpaid_timeout_ms` of its
creation (block time) is cancelled in `begin_block`, identically on every node,
and its reservations are released.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.context import BlockContext, TxContext
from contracts.errors import Rejected
from contracts.fulfilment import release_order
from contracts.lifecycle import (
    AWAITING_PAYMENT,
    cancel_order,
    get_order,
    is_paid,
    put_order,
    require_order,
    require_order_access,
    transition_order,
)
from contracts.payload import MAX_AMOUNT, get_id, get_int, get_text
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "payment.authorize": frozenset({"channel", "operator"}),
    "payment.capture": frozenset({"channel", "operator"}),
    "payment.refund": frozenset({"channel", "operator"}),
}


def _record(state: StateView, tx: Any, ctx: TxContext, kind: str) -> tuple[dict[str, Any], int]:
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    amount = get_int(tx.payload, "amount", 1, MAX_AMOUNT)
    order["payment"]["events"].append(
        {
            "kind": kind,
            "amount": amount,
            "reference": get_text(tx.payload, "reference", ""),
            "tx_id": ctx.tx_id,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
        }
    )
    return order, amount


def _payment_result(order: dict[str, Any]) -> dict[str, Any]:
    payment = order["payment"]
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "authorized": payment["authorized"],
        "captured": payment["captured"],
        "refunded": payment["refunded"],
    }


def process_payment_authorize(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The payment provider authorised an amount for the order."""
    order, amount = _record(state, tx, ctx, "authorized")
    if order["status"] == "cancelled":
        raise Rejected("invalid_transition", f"order {order['order_id']} is cancelled")
    order["payment"]["authorized"] += amount
    put_order(state, order)
    return _payment_result(order)


def process_payment_capture(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Money was captured; once the total is captured the order stops timing out and is released."""
    order, amount = _record(state, tx, ctx, "captured")
    if order["status"] == "cancelled":
        raise Rejected("invalid_transition", f"order {order['order_id']} is cancelled")
    payment = order["payment"]
    if payment["captured"] + amount > order["total"]:
        raise Rejected("over_payment", f"order {order['order_id']} totals {order['total']}")
    payment["captured"] += amount
    if is_paid(order) and order["deadline_ms"] is not None:
        state.delete(keys.unpaid_key(order["deadline_ms"], order["order_id"]))
        order["deadline_ms"] = None
    if is_paid(order) and order["status"] == "allocated":
        transition_order(order, "paid", ctx)
        release_order(state, ctx, order)
    put_order(state, order)
    return _payment_result(order)


def process_payment_refund(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Money was paid back (never more than was captured); a returned order becomes refunded."""
    order, amount = _record(state, tx, ctx, "refunded")
    payment = order["payment"]
    if payment["refunded"] + amount > payment["captured"]:
        raise Rejected("over_refund", f"only {payment['captured'] - payment['refunded']} is left to refund")
    payment["refunded"] += amount
    if order["status"] == "returned":
        transition_order(order, "refunded", ctx)
    put_order(state, order)
    return _payment_result(order)


def begin_block(state: StateView, ctx: BlockContext) -> None:
    """Cancel every prepaid order whose payment deadline has passed by this block's time."""
    due = []
    for key, order_id in state.scan(keys.UNPAID_PREFIX):
        if int(key.split("/")[1]) > ctx.time_ms:
            break
        due.append((key, order_id))
    for key, order_id in due:
        state.delete(key)
        order = get_order(state, order_id)
        if order is None or order["status"] not in AWAITING_PAYMENT or is_paid(order):
            continue
        order["deadline_ms"] = None
        cancel_order(state, ctx, order, "payment timeout")
        put_order(state, order)
