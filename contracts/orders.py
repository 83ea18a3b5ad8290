"""Orders: created by a sales channel, numbered by the ledger, cancelled or completed.

A channel sends its own external reference (unique per channel: sending the
same order again under it returns the existing order and creates nothing,
another order under it is refused with `duplicate_reference`; see
`references`), a customer reference already hashed by the channel (an HMAC
keyed with a secret of the channel's organisation, in hex; no personal data
in clear ever reaches the ledger: the ship-to and notes come sealed, see
`personal`), a delivery region
and coordinates or a pickup store, the lines, payment terms (`prepaid`:
cancelled if not paid within `orders.unpaid_timeout_ms` of block time;
`on_account`: released at once) and a shipping charge, and may add its own
`metadata` (string keys and values) and `tags`, bounded, which the order
keeps as sent. The ledger assigns the order number from the block height and
tx position (`numbering.compute_order_number`), and fixes the price, tax and
gross of every line there and then (`invoicing.price_order`): invoices are
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

from dataclasses import replace
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
    MAX_QTY,
    array,
    bad,
    choice,
    digest,
    ident,
    integer,
    items,
    mapping,
    payload,
    quantity,
    read_payload,
    table,
    text,
)
from contracts.payments import compute_refund_due, start_payment_clock
from contracts.personal import SEALED, record_personal
from contracts.records import Delivery, Order, OrderLine
from contracts.references import hash_reference, recall, remember
from contracts.review import compute_hold_reasons
from contracts.roles import roles_for
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("order.create", "order.import", "order.cancel", "order.complete", "order.edit")

STEP_PARTS = {"order.import": "orders"}
"""Each order of an import runs under the step budget of its own (the tx's budget grows with them)."""

PAYMENT_TERMS = ("prepaid", "on_account")
"""`prepaid`: released once paid; `on_account`: released at once, invoiced and paid later."""

COMPLETABLE = ("delivered", "returned", "refunded")
"""States from which an order may be closed as completed."""

MAX_LINES = 100
"""Most lines in one order."""

MAX_IMPORT_ORDERS = 100
"""Most orders in one `order.import` tx."""

MAX_METADATA_KEYS = 32
"""Most keys of an order's `metadata` (each key 1-64 characters)."""

MAX_METADATA_VALUE = 256
"""Longest value of an order's `metadata`."""

MAX_TAGS = 16
"""Most `tags` of an order."""

MAX_TAG_LENGTH = 32
"""Longest tag of an order."""

ORDER_LINES = items(
    "lines",
    ident("sku"),
    quantity(),
    integer("unit_price", 0, MAX_AMOUNT, required=False, doc="the catalogue price if absent"),
    integer("discount", 0, MAX_AMOUNT * MAX_QTY, default=0, doc="off the line total, at most unit price x qty"),
    max_items=MAX_LINES,
)
"""The lines of an order as the channel sends them."""

DELIVERY = mapping(
    "delivery",
    ident("region", required=False, doc="for tax rates; held for review if absent and no pickup"),
    integer("lat", -90 * MICRO_DEGREES, 90 * MICRO_DEGREES, required=False, doc="micro-degrees, with `lon`"),
    integer("lon", -180 * MICRO_DEGREES, 180 * MICRO_DEGREES, required=False, doc="micro-degrees, with `lat`"),
    required=False,
    doc="where the goods go",
)
"""The delivery address of an order."""

PICKUP = ident("pickup", required=False, doc="the store the customer collects from (must offer pickup)")
"""The pickup store of an order."""

NEW_ORDER = payload(
    text("external_ref", min_length=1, doc="the channel's reference: a re-sent one is a duplicate"),
    digest("customer_hash", doc="HMAC-SHA256 of the channel's customer reference, keyed by its organisation"),
    text("currency", doc="the SKUs' currency"),
    ORDER_LINES,
    DELIVERY,
    PICKUP,
    choice("payment_terms", PAYMENT_TERMS, default="prepaid"),
    integer("shipping_charge", 0, MAX_AMOUNT, default=0, doc="minor units, tax included as prices are"),
    table(
        "metadata",
        text("value", max_length=MAX_METADATA_VALUE),
        max_items=MAX_METADATA_KEYS,
        default={},
        doc="the channel's own data, kept on the order as sent",
    ),
    array(
        "tags",
        text("tag", min_length=1, max_length=MAX_TAG_LENGTH),
        max_items=MAX_TAGS,
        default=[],
        doc="the channel's labels, kept on the order as sent",
    ),
    SEALED,
)
"""One order as a channel places it."""

PAYLOADS = {
    "order.create": NEW_ORDER,
    "order.import": payload(
        items(
            "orders",
            *NEW_ORDER.fields,
            max_items=MAX_IMPORT_ORDERS,
            doc="each placed as `order.create` places it, on its own",
        )
    ),
    "order.cancel": payload(
        ident("order_id"),
        items(
            "lines",
            integer("line", 0, MAX_LINES - 1, doc="index of the order line"),
            quantity(),
            max_items=MAX_LINES,
            required=False,
            doc="what to cancel; everything that has not left if absent",
        ),
        text("reason", default="cancelled"),
        text("reference", default="", doc="the sender's reference, taken once per order"),
    ),
    "order.complete": payload(ident("order_id")),
    "order.edit": payload(
        ident("order_id"),
        replace(ORDER_LINES, required=False, doc="the new lines (unchanged if absent)"),
        DELIVERY,
        PICKUP,
    ),
}
"""The payload of each tx kind of this module."""


def get_order_by_external_ref(state: StateView, channel: str, external_ref: str) -> str | None:
    known = state.get(keys.external_ref_key(channel, hash_reference(external_ref)))
    return None if known is None else str(known["result"]["order_id"])


def read_lines(state: StateView, sent: list[dict[str, Any]], currency: str) -> tuple[list[OrderLine], bool]:
    """Order lines (as `ORDER_LINES` reads them) priced from the catalogue, and whether any given price differed
    from it."""
    lines: list[OrderLine] = []
    price_mismatch = False
    for index, item in enumerate(sent):
        sku = require_sku(state, item["sku"])
        if sku["currency"] != currency:
            raise Rejected("currency_mismatch", f"SKU {sku['sku']} is priced in {sku['currency']}, not {currency}")
        qty = item["qty"]
        price = sku["price"] if item["unit_price"] is None else item["unit_price"]
        price_mismatch = price_mismatch or price != sku["price"]
        if item["discount"] > price * qty:
            raise bad(f"lines[{index}].discount must be an integer in [0, {price * qty}]")
        lines.append(
            {
                "sku": sku["sku"],
                "qty": qty,
                "unit_price": price,
                "discount": item["discount"],
                "tax_class": sku["tax_class"],
                "virtual": sku["virtual"],
                "invoiced": 0,
                "cancelled": 0,
                "tax_rate": 0,
                "net": 0,
                "tax": 0,
                "gross": 0,
            }
        )
    return lines, price_mismatch


def read_delivery(delivery: Delivery | None) -> Delivery | None:
    """The delivery address (as `DELIVERY` reads it): coordinates both or neither."""
    if delivery is not None and (delivery["lat"] is None) != (delivery["lon"] is None):
        raise bad("delivery needs both lat and lon, or neither")
    return delivery


def read_destination(state: StateView, fields: dict[str, Any]) -> tuple[Delivery | None, str | None]:
    """The delivery address and the pickup store (which must offer pickup) of an order."""
    pickup = fields["pickup"]
    if pickup is not None and not require_location(state, pickup)["pickup_allowed"]:
        raise Rejected("pickup_not_allowed", f"location {pickup} does not offer pickup")
    return read_delivery(fields["delivery"]), pickup


def open_order(
    state: StateView,
    ctx: TxContext,
    fields: dict[str, Any],
    review: bool,
    exchange_of: str | None = None,
    item: int | None = None,
) -> Order:
    """Number and store a new order (an `order.create` payload as `read_payload` returns it; `item`: its place
    in an `order.import`), then review and allocate it (or hold it)."""
    external_ref = fields["external_ref"]
    currency = fields["currency"]
    lines, price_mismatch = read_lines(state, fields["lines"], currency)
    delivery, pickup = read_destination(state, fields)
    terms = fields["payment_terms"]
    order: Order = {
        "order_id": compute_order_number(ctx.height, ctx.tx_index, item),
        "channel": ctx.signer.id,
        "org": ctx.signer.org,
        "external_ref": external_ref,
        "customer_hash": fields["customer_hash"],
        "currency": currency,
        "lines": lines,
        "delivery": delivery,
        "pickup": pickup,
        "payment_terms": terms,
        "shipping_charge": fields["shipping_charge"],
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
        "metadata": dict(fields["metadata"]),
        "tags": list(fields["tags"]),
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


def compute_settlement(state: StateView, order: Order) -> tuple[int, int]:
    """(captured less refunded, invoiced less credited): equal once the order's money is settled."""
    documents = 0
    for _, number in state.scan(keys.order_invoice_prefix(order["order_id"])):
        document = require_invoice(state, number)
        documents += -document["total"] if document["credit_note"] else document["total"]
    return order["payment"]["captured"] - order["payment"]["refunded"], documents


def process_order_create(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """A channel places an order; a re-sent external reference returns the existing order."""
    return place_order(state, ctx, read_payload(PAYLOADS["order.create"], tx.payload))


def process_order_import(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """A channel places up to `MAX_IMPORT_ORDERS` orders in one tx (the bulk path: one signature, one
    admission). Each is placed as `order.create` places it, on its own and under the step budget of its own:
    one refused (too large for that budget too) is rolled back and its result says why (`error`, `message`),
    and does not hold back the others. `placed` counts the new orders
    (not the duplicates)."""
    fields = read_payload(PAYLOADS["order.import"], tx.payload)
    results: list[dict[str, Any]] = []
    for item, order_fields in enumerate(fields["orders"]):
        state.begin()
        try:
            result = ctx.run_part(place_order, state, ctx, order_fields, item)
        except Rejected as refusal:
            state.rollback()
            results.append(
                {"external_ref": order_fields["external_ref"], "error": refusal.code, "message": refusal.message}
            )
            continue
        state.commit()
        results.append(result)
    return {"orders": results, "placed": sum(1 for result in results if result.get("duplicate") is False)}


def place_order(state: StateView, ctx: TxContext, fields: dict[str, Any], item: int | None = None) -> dict[str, Any]:
    """Open the order of an `order.create` payload (`item`: its place in an import), or answer the one that a
    re-sent external reference placed before; the reference sent with another order is `duplicate_reference`."""
    external_ref = fields["external_ref"]
    key = keys.external_ref_key(ctx.signer.id, hash_reference(external_ref))
    # sealing is randomised: the same order sent again is known by everything but its sealed personal data
    content = {name: value for name, value in fields.items() if name != "personal"}
    known = recall(state, key, content, external_ref)
    if known is not None:
        order_id = known["order_id"]
        return {"order_id": order_id, "status": require_order(state, order_id)["status"], "duplicate": True}
    order = open_order(state, ctx, fields, review=True, item=item)
    if fields["personal"] is not None:
        record_personal(state, ctx, order["order_id"], fields["personal"])
    remember(state, key, content, {"order_id": order["order_id"]})
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "duplicate": False,
        "total": order["total"],
        "hold_reasons": order["hold_reasons"],
        "fulfilments": order["fulfilments"],
        "backorder": order["backorder"],
    }


def read_cancel_lines(sent: list[dict[str, Any]], order: Order) -> list[tuple[int, int]]:
    """The `lines` of a partial cancellation: [{line, qty}], each line of the order, once."""
    wanted: list[tuple[int, int]] = []
    for item in sent:
        index = item["line"]
        if index >= len(order["lines"]):
            raise bad(f"order {order['order_id']} has no line {index}")
        if any(index == seen for seen, _ in wanted):
            raise bad(f"line {index} named twice")
        wanted.append((index, item["qty"]))
    return wanted


def process_order_cancel(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The channel (or an operator) cancels what has not left of an order: all of it, or `lines`; under a
    `reference` taken before, the same cancellation answers its first result and changes nothing."""
    fields = read_payload(PAYLOADS["order.cancel"], tx.payload)
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    reference = fields["reference"]
    key = keys.cancel_reference_key(order["order_id"], hash_reference(reference))
    known = recall(state, key, fields, reference) if reference else None
    if known is not None:
        return known
    if order["status"] == "cancelled":
        raise Rejected("invalid_transition", f"order {order['order_id']} is cancelled")
    reason = fields["reason"]
    if fields["lines"] is None:
        cancellation = cancel_order(state, ctx, order, reason)
    else:
        cancellation = cancel_quantities(state, ctx, order, read_cancel_lines(fields["lines"], order), reason)
    put_order(state, order)
    result = {
        "order_id": order["order_id"],
        "status": order["status"],
        "cancelled": cancellation["amount"],
        "refund_due": compute_refund_due(order),
        "duplicate": False,
    }
    if reference:
        remember(state, key, fields, result)
    return result


def process_order_edit(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Change the lines or the destination of an order held in review; it is reviewed again (and allocated if
    nothing holds it any more)."""
    fields = read_payload(PAYLOADS["order.edit"], tx.payload)
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    if order["status"] != "on_hold":
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}: allocated already")
    price_mismatch = "price_mismatch" in order["hold_reasons"]
    if fields["lines"] is not None:
        if order["cancellations"]:
            raise Rejected("invalid_transition", f"order {order['order_id']} has cancelled lines")
        order["lines"], price_mismatch = read_lines(state, fields["lines"], order["currency"])
    if fields["delivery"] is not None or fields["pickup"] is not None:
        order["delivery"], order["pickup"] = read_destination(state, fields)
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


def process_order_complete(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Close a delivered (or returned) order whose money is settled."""
    fields = read_payload(PAYLOADS["order.complete"], tx.payload)
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    if order["status"] not in COMPLETABLE:
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}")
    paid, documented = compute_settlement(state, order)
    if paid != documented:
        raise Rejected("unsettled", f"order {order['order_id']} has {paid} paid against {documented} invoiced")
    transition_order(order, "completed", ctx)
    put_order(state, order)
    return {"order_id": order["order_id"], "status": order["status"]}
