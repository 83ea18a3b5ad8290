"""Interception and review: ledger-configured rules that put a new order on hold for an operator.

A new order is held, before any stock is reserved, when its amount or a line
quantity is over the configured limit, its customer hash is blocked, the same
customer ordered within the repeat window, a line price differs from the
catalogue, or it has neither a delivery address nor a pickup store. Where
captures belong to the payment provider (`payments.capture_requires_provider`)
an order that would be released with nothing captured is held too: one sold
on account (`on_account`), or one whose discounts make it free
(`nothing_due`); the operator's approval is what grants them. An operator
then approves it (`order.approve`: it is allocated as a new order would be, and
a prepaid order's payment clock starts; one paid while held is released at
once) or rejects it (`order.reject`: it is cancelled). A limit of 0 switches
its rule off. A held order may be edited (`order.edit` in `orders`) and is
reviewed again.

A released order can be intercepted before it ships (`order.intercept`, for
example on a fraud alert or a customer's call): its locations can neither pick
nor ship it until an operator releases it again (`order.release`) or it is
cancelled; a payment or stock sourced meanwhile leaves it held. An unpaid
order keeps its payment deadline while intercepted (it is cancelled when the
deadline passes, held or not); released, it waits for its payment again.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.allocation import allocate_new_order
from contracts.cancellation import cancel_order
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.fulfilment import lift_interception
from contracts.lifecycle import (
    OPEN_FULFILMENT,
    get_order_fulfilments,
    put_order,
    require_order,
    require_order_access,
    transition_order,
)
from contracts.payload import (
    MAX_AMOUNT,
    MAX_QTY,
    array,
    digest,
    ident,
    integer,
    payload,
    read_payload,
    text,
)
from contracts.payments import start_payment_clock
from contracts.records import Order
from contracts.roles import roles_for
from contracts.settings import MAX_DURATION_MS, Setting
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("order.approve", "order.reject", "order.intercept", "order.release")

INTERCEPTABLE = ("released", "backordered", "partially_shipped")
"""Order states from which a released order may be held before (the rest of) it ships."""

MAX_BLOCKED_CUSTOMERS = 1_000
"""Most customer hashes in `review.blocked_customers` (the configuration is read for every tx)."""

SETTINGS = (
    Setting(
        integer("review.max_order_amount", 0, MAX_AMOUNT, default=1_000_000, doc="minor units; 0: no limit"),
        governed=True,
    ),
    Setting(
        integer("review.max_line_qty", 0, MAX_QTY, default=100, doc="units of one line; 0: no limit"), governed=True
    ),
    Setting(
        array(
            "review.blocked_customers",
            digest(""),
            max_items=MAX_BLOCKED_CUSTOMERS,
            default=[],
            doc="customer hashes whose orders are held (held orders are released one by one by an operator)",
        ),
        names_customers=True,
    ),
    Setting(
        integer(
            "review.repeat_window_ms",
            0,
            MAX_DURATION_MS,
            default=0,
            doc="a customer's next order within this time is held; 0: off",
        ),
        governed=True,
    ),
)
"""The configuration keys of this module (`contracts.settings`): the limits that hold orders for everyone are
governed, the list of blocked customers is the operators' (as approving a held order is)."""

PAYLOADS = {
    "order.approve": payload(ident("order_id"), text("note", default="")),
    "order.reject": payload(ident("order_id"), text("reason", default="rejected in review")),
    "order.intercept": payload(ident("order_id"), text("reason", default="intercepted")),
    "order.release": payload(ident("order_id"), text("note", default="")),
}
"""The payload of each tx kind of this module."""


def compute_hold_reasons(
    state: StateView, ctx: TxContext, order: Order, price_mismatch: bool, is_new: bool = True
) -> list[str]:
    """Why an order must wait for review (empty: it may proceed). While the repeat window is on, a new order is
    checked against it and records the customer's order time (orders placed while it is off are not recorded,
    so a window switched on counts from then); an edited one keeps the repeat hold it had."""
    reasons = []
    max_amount = int(ctx.config["review.max_order_amount"])
    if max_amount and order["total"] > max_amount:
        reasons.append("amount_over_limit")
    max_qty = int(ctx.config["review.max_line_qty"])
    if max_qty and any(line["qty"] > max_qty for line in order["lines"]):
        reasons.append("qty_over_limit")
    if order["customer_hash"] in ctx.config["review.blocked_customers"]:
        reasons.append("blocked_customer")
    window = int(ctx.config["review.repeat_window_ms"])
    if is_new and window:
        # with the window off nothing reads a customer's last order time, so none is kept
        customer = state.get(keys.customer_key(order["customer_hash"]))
        if customer is not None and ctx.time_ms - customer["last_ms"] < window:
            reasons.append("repeat_order")
        state.put(keys.customer_key(order["customer_hash"]), {"last_ms": ctx.time_ms})
    elif "repeat_order" in order["hold_reasons"]:
        reasons.append("repeat_order")
    if price_mismatch:
        reasons.append("price_mismatch")
    if ctx.config["payments.capture_requires_provider"]:
        if order["payment_terms"] == "on_account":
            reasons.append("on_account")
        elif order["total"] == 0 and any(line["discount"] for line in order["lines"]):
            reasons.append("nothing_due")
    if order["pickup"] is None and (order["delivery"] is None or not order["delivery"].get("region")):
        reasons.append("missing_delivery")
    return reasons


def _held_order(state: StateView, fields: dict[str, Any]) -> Order:
    order = require_order(state, fields["order_id"])
    if order["status"] != "on_hold":
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}, not on hold")
    return order


def process_order_approve(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """An operator lets a held order through: it is allocated now."""
    fields = read_payload(PAYLOADS["order.approve"], tx.payload)
    order = _held_order(state, fields)
    order["review"] = {"decision": "approved", "by": ctx.signer.id, "note": fields["note"]}
    start_payment_clock(state, ctx, order)
    allocate_new_order(state, ctx, order)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"], "fulfilments": order["fulfilments"]}


def process_order_reject(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """An operator refuses a held order: it is cancelled."""
    fields = read_payload(PAYLOADS["order.reject"], tx.payload)
    order = _held_order(state, fields)
    reason = fields["reason"]
    order["review"] = {"decision": "rejected", "by": ctx.signer.id, "note": reason}
    cancel_order(state, ctx, order, reason)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}


def process_order_intercept(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Hold a released order before (the rest of) it ships."""
    fields = read_payload(PAYLOADS["order.intercept"], tx.payload)
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    if order["status"] not in INTERCEPTABLE:
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}")
    if not any(f["status"] in OPEN_FULFILMENT for f in get_order_fulfilments(state, order)) and not order["backorder"]:
        raise Rejected("already_shipped", f"order {order['order_id']} has nothing left to ship")
    transition_order(order, "intercepted", ctx, fields["reason"])
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}


def process_order_release(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Let an intercepted order ship again."""
    fields = read_payload(PAYLOADS["order.release"], tx.payload)
    order = require_order(state, fields["order_id"])
    if order["status"] != "intercepted":
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}, not intercepted")
    lift_interception(state, ctx, order, fields["note"])
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}
