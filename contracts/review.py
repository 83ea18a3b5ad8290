"""Interception and review: ledger-configured rules that put a new order on hold for an operator.

A new order is held, before any stock is reserved, when its amount or a line
quantity is over the configured limit, its customer hash is blocked, the same
customer ordered within the repeat window, a line price differs from the
catalogue, or it has neither a delivery address nor a pickup store. An operator
then approves it (`order.approve`: it is allocated as a new order would be) or
rejects it (`order.reject`: it is cancelled). A limit of 0 switches its rule off.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.allocation import allocate_new_order
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.lifecycle import cancel_order, put_order, require_order
from contracts.payload import get_id, get_text
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "order.approve": frozenset({"operator"}),
    "order.reject": frozenset({"operator"}),
}

DEFAULTS: dict[str, Any] = {
    "review.max_order_amount": 1_000_000,
    "review.max_line_qty": 100,
    "review.blocked_customers": [],
    "review.repeat_window_ms": 0,
}
"""Hold limits: order amount in minor units, quantity per line, blocked customer hashes, repeat window."""


def get_setting(ctx: TxContext, key: str) -> Any:
    return ctx.config.get(key, DEFAULTS[key])


def compute_hold_reasons(state: StateView, ctx: TxContext, order: dict[str, Any], price_mismatch: bool) -> list[str]:
    """Why a new order must wait for review (empty: it may proceed); records the customer's order time."""
    reasons = []
    max_amount = int(get_setting(ctx, "review.max_order_amount"))
    if max_amount and order["total"] > max_amount:
        reasons.append("amount_over_limit")
    max_qty = int(get_setting(ctx, "review.max_line_qty"))
    if max_qty and any(line["qty"] > max_qty for line in order["lines"]):
        reasons.append("qty_over_limit")
    if order["customer_hash"] in get_setting(ctx, "review.blocked_customers"):
        reasons.append("blocked_customer")
    window = int(get_setting(ctx, "review.repeat_window_ms"))
    customer = state.get(keys.customer_key(order["customer_hash"]))
    if window and customer is not None and ctx.time_ms - customer["last_ms"] < window:
        reasons.append("repeat_order")
    state.put(keys.customer_key(order["customer_hash"]), {"last_ms": ctx.time_ms})
    if price_mismatch:
        reasons.append("price_mismatch")
    if order["pickup"] is None and (order["delivery"] is None or not order["delivery"].get("region")):
        reasons.append("missing_delivery")
    return reasons


def _held_order(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    order = require_order(state, get_id(tx.payload, "order_id"))
    if order["status"] != "on_hold":
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}, not on hold")
    return order


def process_order_approve(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """An operator lets a held order through: it is allocated now."""
    order = _held_order(state, tx, ctx)
    order["review"] = {"decision": "approved", "by": ctx.signer.id, "note": get_text(tx.payload, "note", "")}
    allocate_new_order(state, ctx, order)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"], "fulfilments": order["fulfilments"]}


def process_order_reject(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """An operator refuses a held order: it is cancelled."""
    order = _held_order(state, tx, ctx)
    reason = get_text(tx.payload, "reason", "rejected in review")
    order["review"] = {"decision": "rejected", "by": ctx.signer.id, "note": reason}
    cancel_order(state, ctx, order, reason)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}
