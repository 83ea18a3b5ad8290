"""Orders: created by a sales channel, numbered by the ledger, cancelled or completed.

A channel sends its own external reference (unique per channel: sending the
same reference again returns the existing order and creates nothing), a
customer reference already hashed by the channel (sha256 hex; no personal data
in clear ever reaches the ledger), a delivery region and coordinates or a
pickup store, the lines, payment terms (`prepaid`: cancelled if not paid within
`orders.unpaid_timeout_ms` of block time; `on_account`: released at once) and
a shipping charge. The ledger assigns the order number from the block height
and tx position (`numbering.compute_order_number`), and fixes the price, tax
and gross of every line there and then (`invoicing.price_order`): invoices are
cut from that snapshot.

A new order goes through review (`review.compute_hold_reasons`); if nothing
holds it, it is allocated at once (`allocation.allocate_new_order`), reserving
stock, or refused with `insufficient_stock` when the network cannot serve it
and backorders are off.

`order.cancel` cancels the whole order, or with `lines` some units of some
lines, as long as they have not left (`cancellation`); after a partial
shipment it cancels what is left. `order.complete` closes an order whose goods
are delivered or returned and whose money is settled: what was captured less
what was refunded is what its invoices less its credit notes say.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.allocation import allocate_new_order
from contracts.cancellation import cancel_order, cancel_quantities
from contracts.catalogue import MICRO_DEGREES, require_location, require_sku
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.invoicing import price_order, require_invoice
from contracts.lifecycle import (
    INITIAL_STATE,
    put_order,
    require_order,
    require_order_access,
    transition_order,
)
from contracts.numbering import compute_order_number
from contracts.payload import (
    MAX_AMOUNT,
    bad,
    get_choice,
    get_hash_hex,
    get_id,
    get_int,
    get_list,
    get_optional_id,
    get_qty,
    get_text,
)
from contracts.payments import compute_refund_due, start_payment_clock
from contracts.review import compute_hold_reasons
from ledger.encoding import sha256
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "order.create": frozenset({"channel"}),
    "order.cancel": frozenset({"channel", "operator"}),
    "order.complete": frozenset({"channel", "operator"}),
    "order.edit": frozenset({"channel", "operator"}),
}

PAYMENT_TERMS = ("prepaid", "on_account")
"""`prepaid`: released once paid; `on_account`: released at once, invoiced and paid later."""

COMPLETABLE = ("delivered", "returned", "refunded")
"""States from which an order may be closed as completed."""


def get_order_by_external_ref(state: StateView, channel: str, external_ref: str) -> str | None:
    return state.get(keys.external_ref_key(channel, sha256(external_ref.encode()).hex()))


def read_lines(state: StateView, payload: dict[str, Any], currency: str) -> tuple[list[dict[str, Any]], bool]:
    """Order lines priced from the catalogue, and whether any given price differed from it."""
    lines = []
    price_mismatch = False
    for item in get_list(payload, "lines", 100):
        sku = require_sku(state, get_id(item, "sku"))
        if sku["currency"] != currency:
            raise Rejected("currency_mismatch", f"SKU {sku['sku']} is priced in {sku['currency']}, not {currency}")
        qty = get_qty(item)
        price = get_int(item, "unit_price", 0, MAX_AMOUNT, sku["price"])
        price_mismatch = price_mismatch or price != sku["price"]
        lines.append(
            {
                "sku": sku["sku"],
                "qty": qty,
                "unit_price": price,
                "discount": get_int(item, "discount", 0, price * qty, 0),
                "tax_class": sku["tax_class"],
                "virtual": sku["virtual"],
                "invoiced": 0,
                "cancelled": 0,
            }
        )
    return lines, price_mismatch


def read_delivery(payload: dict[str, Any]) -> dict[str, Any] | None:
    delivery = payload.get("delivery")
    if delivery is None:
        return None
    if type(delivery) is not dict:
        raise bad("delivery must be a map")
    out: dict[str, Any] = {"region": get_optional_id(delivery, "region"), "lat": None, "lon": None}
    if delivery.get("lat") is not None or delivery.get("lon") is not None:
        out["lat"] = get_int(delivery, "lat", -90 * MICRO_DEGREES, 90 * MICRO_DEGREES)
        out["lon"] = get_int(delivery, "lon", -180 * MICRO_DEGREES, 180 * MICRO_DEGREES)
    return out


def read_destination(state: StateView, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The delivery address and the pickup store (which must offer pickup) of an order."""
    pickup = get_optional_id(payload, "pickup")
    if pickup is not None and not require_location(state, pickup)["pickup_allowed"]:
        raise Rejected("pickup_not_allowed", f"location {pickup} does not offer pickup")
    return read_delivery(payload), pickup


def open_order(
    state: StateView, ctx: TxContext, payload: dict[str, Any], review: bool, exchange_of: str | None = None
) -> dict[str, Any]:
    """Validate, number and store a new order, then review and allocate it (or hold it)."""
    external_ref = get_text(payload, "external_ref")
    if not external_ref:
        raise bad("external_ref must not be empty")
    currency = get_text(payload, "currency")
    lines, price_mismatch = read_lines(state, payload, currency)
    delivery, pickup = read_destination(state, payload)
    terms = get_choice(payload, "payment_terms", PAYMENT_TERMS, "prepaid")
    order: dict[str, Any] = {
        "order_id": compute_order_number(ctx.height, ctx.tx_index),
        "channel": ctx.signer.id,
        "org": ctx.signer.org,
        "external_ref": external_ref,
        "customer_hash": get_hash_hex(payload, "customer_hash"),
        "currency": currency,
        "lines": lines,
        "delivery": delivery,
        "pickup": pickup,
        "payment_terms": terms,
        "shipping_charge": get_int(payload, "shipping_charge", 0, MAX_AMOUNT, 0),
        "shipping": None,
        "shipping_state": "open",
        "shipping_invoice": None,
        "prices_include_tax": True,
        "rounding": "line",
        "total": 0,
        "status": INITIAL_STATE,
        "history": [
            {
                "from": None,
                "to": INITIAL_STATE,
                "by": ctx.signer.id,
                "tx_id": ctx.tx_id,
                "height": ctx.height,
                "time_ms": ctx.time_ms,
                "reason": "",
            }
        ],
        "fulfilments": [],
        "fulfilment_count": 0,
        "backorder": [],
        "declined_at": [],
        "released": False,
        "hold_reasons": [],
        "payment": {
            "authorized": 0,
            "captured": 0,
            "refunded": 0,
            "cancelled": 0,
            "credits": {},
            "refunded_by": {},
            "events": [],
        },
        "cancellations": [],
        "returns": [],
        "exchange_of": exchange_of,
        "awaiting_return": exchange_of is not None,
        "edits": [],
        "created_ms": ctx.time_ms,
        "deadline_ms": None,
    }
    order["total"] = price_order(state, ctx.config, order)
    if review:
        order["hold_reasons"] = compute_hold_reasons(state, ctx, order, price_mismatch)
    if order["hold_reasons"]:
        transition_order(order, "on_hold", ctx, ", ".join(order["hold_reasons"]))
    else:
        start_payment_clock(state, ctx, order)
        allocate_new_order(state, ctx, order)
    put_order(state, order)
    return order


def compute_settlement(state: StateView, order: dict[str, Any]) -> tuple[int, int]:
    """(captured less refunded, invoiced less credited): equal once the order's money is settled."""
    documents = 0
    for _, number in state.scan(keys.order_invoice_prefix(order["order_id"])):
        document = require_invoice(state, number)
        documents += -document["total"] if document["credit_note"] else document["total"]
    return order["payment"]["captured"] - order["payment"]["refunded"], documents


def process_order_create(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """A channel places an order; a re-sent external reference returns the existing order."""
    external_ref = get_text(tx.payload, "external_ref")
    existing = get_order_by_external_ref(state, ctx.signer.id, external_ref)
    if existing is not None:
        order = require_order(state, existing)
        return {"order_id": existing, "status": order["status"], "duplicate": True}
    order = open_order(state, ctx, tx.payload, review=True)
    state.put(keys.external_ref_key(ctx.signer.id, sha256(external_ref.encode()).hex()), order["order_id"])
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "duplicate": False,
        "total": order["total"],
        "hold_reasons": order["hold_reasons"],
        "fulfilments": order["fulfilments"],
        "backorder": order["backorder"],
    }


def read_cancel_lines(payload: dict[str, Any], order: dict[str, Any]) -> list[tuple[int, int]]:
    """The `lines` of a partial cancellation: [{line, qty}], each line once."""
    wanted: list[tuple[int, int]] = []
    for item in get_list(payload, "lines", len(order["lines"])):
        index = get_int(item, "line", 0, len(order["lines"]) - 1)
        if any(index == seen for seen, _ in wanted):
            raise bad(f"line {index} named twice")
        wanted.append((index, get_qty(item)))
    return wanted


def process_order_cancel(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The channel (or an operator) cancels what has not left of an order: all of it, or `lines`."""
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    if order["status"] == "cancelled":
        raise Rejected("invalid_transition", f"order {order['order_id']} is cancelled")
    reason = get_text(tx.payload, "reason", "cancelled")
    if tx.payload.get("lines") is None:
        cancellation = cancel_order(state, ctx, order, reason)
    else:
        cancellation = cancel_quantities(state, ctx, order, read_cancel_lines(tx.payload, order), reason)
    put_order(state, order)
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "cancelled": cancellation["amount"],
        "refund_due": compute_refund_due(order),
    }


def process_order_edit(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Change the lines or the destination of an order held in review; it is reviewed again (and allocated if
    nothing holds it any more)."""
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    if order["status"] != "on_hold":
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}: allocated already")
    payload = tx.payload
    price_mismatch = "price_mismatch" in order["hold_reasons"]
    if payload.get("lines") is not None:
        if order["cancellations"]:
            raise Rejected("invalid_transition", f"order {order['order_id']} has cancelled lines")
        order["lines"], price_mismatch = read_lines(state, payload, order["currency"])
    if payload.get("delivery") is not None or payload.get("pickup") is not None:
        order["delivery"], order["pickup"] = read_destination(state, payload)
    order["total"] = price_order(state, ctx.config, order)
    order["edits"].append({"by": ctx.signer.id, "tx_id": ctx.tx_id, "height": ctx.height, "time_ms": ctx.time_ms})
    order["hold_reasons"] = compute_hold_reasons(state, ctx, order, price_mismatch, is_new=False)
    if order["payment"]["captured"] > order["total"]:
        raise Rejected("over_payment", f"order {order['order_id']} has {order['payment']['captured']} captured")
    if not order["hold_reasons"]:
        start_payment_clock(state, ctx, order)
        allocate_new_order(state, ctx, order)
    put_order(state, order)
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "total": order["total"],
        "hold_reasons": order["hold_reasons"],
    }


def process_order_complete(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Close a delivered (or returned) order whose money is settled."""
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    if order["status"] not in COMPLETABLE:
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}")
    paid, documented = compute_settlement(state, order)
    if paid != documented:
        raise Rejected("unsettled", f"order {order['order_id']} has {paid} paid against {documented} invoiced")
    transition_order(order, "completed", ctx)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}
