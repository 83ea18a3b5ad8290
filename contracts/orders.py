"""Orders: created by a sales channel, numbered by the ledger, cancelled or completed.

A channel sends its own external reference (unique per channel: sending the
same reference again returns the existing order and creates nothing), a
customer reference already hashed by the channel (sha256 hex; no personal data
in clear ever reaches the ledger), a delivery region and coordinates or a
pickup store, the lines, payment terms (`prepaid`: cancelled if not paid within
`orders.unpaid_timeout_ms` of block time; `on_account`: released at once) and
a shipping charge. The ledger assigns the order number from the block height
and tx position (`numbering.compute_order_number`).

A new order goes through review (`review.compute_hold_reasons`); if nothing
holds it, it is allocated at once (`allocation.allocate_new_order`), reserving
stock, or refused with `insufficient_stock` when the network cannot serve it
and backorders are off.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.allocation import allocate_new_order
from contracts.catalogue import MICRO_DEGREES, require_location, require_sku
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.invoicing import build_items, compute_lines
from contracts.invoicing import get_setting as get_tax_setting
from contracts.lifecycle import (
    INITIAL_STATE,
    cancel_order,
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
from contracts.review import compute_hold_reasons
from ledger.encoding import sha256
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "order.create": frozenset({"channel"}),
    "order.cancel": frozenset({"channel", "operator"}),
    "order.complete": frozenset({"channel", "operator"}),
}

DEFAULTS: dict[str, Any] = {
    "orders.unpaid_timeout_ms": 1_800_000,
}
"""How long (block time) a prepaid order may stay unpaid before it is cancelled."""

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


def open_order(
    state: StateView, ctx: TxContext, payload: dict[str, Any], review: bool, exchange_of: str | None = None
) -> dict[str, Any]:
    """Validate, number and store a new order, then review and allocate it (or hold it)."""
    external_ref = get_text(payload, "external_ref")
    if not external_ref:
        raise bad("external_ref must not be empty")
    currency = get_text(payload, "currency")
    lines, price_mismatch = read_lines(state, payload, currency)
    pickup = get_optional_id(payload, "pickup")
    if pickup is not None and not require_location(state, pickup)["pickup_allowed"]:
        raise Rejected("pickup_not_allowed", f"location {pickup} does not offer pickup")
    terms = get_choice(payload, "payment_terms", PAYMENT_TERMS, "prepaid")
    timeout = int(ctx.config.get("orders.unpaid_timeout_ms", DEFAULTS["orders.unpaid_timeout_ms"]))
    order: dict[str, Any] = {
        "order_id": compute_order_number(ctx.height, ctx.tx_index),
        "channel": ctx.signer.id,
        "org": ctx.signer.org,
        "external_ref": external_ref,
        "customer_hash": get_hash_hex(payload, "customer_hash"),
        "currency": currency,
        "lines": lines,
        "delivery": read_delivery(payload),
        "pickup": pickup,
        "payment_terms": terms,
        "shipping_charge": get_int(payload, "shipping_charge", 0, MAX_AMOUNT, 0),
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
        "payment": {"authorized": 0, "captured": 0, "refunded": 0, "events": []},
        "invoiced": [0] * len(lines),
        "shipping_invoiced": False,
        "returns": [],
        "exchange_of": exchange_of,
        "created_ms": ctx.time_ms,
        "deadline_ms": ctx.time_ms + timeout if terms == "prepaid" else None,
    }
    order["total"] = compute_order_total(state, ctx, order)
    if review:
        order["hold_reasons"] = compute_hold_reasons(state, ctx, order, price_mismatch)
    if order["hold_reasons"]:
        transition_order(order, "on_hold", ctx, ", ".join(order["hold_reasons"]))
    else:
        allocate_new_order(state, ctx, order)
    if order["deadline_ms"] is not None:
        state.put(keys.unpaid_key(order["deadline_ms"], order["order_id"]), order["order_id"])
    put_order(state, order)
    return order


def compute_order_total(state: StateView, ctx: TxContext, order: dict[str, Any]) -> int:
    """What the customer pays: all lines and the shipping charge, taxed as one invoice would be."""
    whole = {"fulfilment_id": "", "lines": [{"line": i, "qty": line["qty"]} for i, line in enumerate(order["lines"])]}
    scratch = {**order, "invoiced": [0] * len(order["lines"])}
    items = build_items(state, ctx.config, scratch, [whole], True)
    include_tax = bool(get_tax_setting(ctx.config, "tax.prices_include_tax"))
    per_invoice = get_tax_setting(ctx.config, "tax.rounding") == "invoice"
    return sum(line["gross"] for line in compute_lines(items, include_tax, per_invoice))


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


def process_order_cancel(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The channel (or an operator) cancels an order before any of it has shipped."""
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    cancel_order(state, ctx, order, get_text(tx.payload, "reason", "cancelled"))
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"], "refund_due": order["payment"]["captured"]}


def process_order_complete(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """Close a delivered (or returned and refunded) order."""
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    if order["status"] not in COMPLETABLE:
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}")
    transition_order(order, "completed", ctx)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}
