"""Fulfilment: releasing a paid order to its locations, then picked, shipped and delivered.

When an order is paid (or sold on account; an order whose amount due is zero
is paid by definition) it is released: its allocated fulfilments go to their
locations, and virtual goods are delivered at once (a `virtual_outbound`
journal entry, no stock); lines still backordered follow when stock arrives.
`settle_order` is the one place that decides this after anything that changes
an order's allocation or payment. An intercepted order's fulfilments are
neither picked nor shipped until an operator releases it
(`lift_interception`): a capture or a re-sourcing pass settles it but leaves
it held. The location marks its fulfilment picked, shipped (with carrier and
tracking; the reserved stock leaves through `shipment` journal entries, lot
by lot) and delivered. Each shipment is invoiced as `invoicing` is
configured, and the order's status follows its fulfilments.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.catalogue import require_location, require_location_access
from contracts.context import Context, TxContext
from contracts.errors import Rejected
from contracts.inventory import record_virtual_outbound, remove_stock
from contracts.invoicing import invoice_shipped
from contracts.lifecycle import (
    compute_shipping_status,
    get_order_fulfilments,
    is_paid,
    put_fulfilment,
    put_order,
    require_fulfilment,
    require_order,
    require_order_access,
    set_fulfilment_status,
    sync_order_status,
    transition_order,
)
from contracts.payload import ident, payload, read_payload, text
from contracts.records import Fulfilment, Order
from contracts.roles import reaches_every_org, roles_for
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("fulfilment.pick", "fulfilment.ship", "fulfilment.deliver")

PAYLOADS = {
    "fulfilment.pick": payload(ident("fulfilment_id")),
    "fulfilment.ship": payload(
        ident("fulfilment_id"), text("carrier"), text("tracking", default="", doc="the carrier's tracking code")
    ),
    "fulfilment.deliver": payload(ident("fulfilment_id")),
}
"""The payload of each tx kind of this module."""


def release_order(state: StateView, ctx: Context, order: Order) -> None:
    """Hand a paid order's allocated fulfilments to their locations; deliver its virtual goods at once."""
    if order["status"] != "released":
        transition_order(order, "released", ctx)
    order["released"] = True
    fulfilments = get_order_fulfilments(state, order)
    for record in fulfilments:
        if record["status"] != "allocated":
            continue
        if record["virtual"]:
            for item in record["lines"]:
                record_virtual_outbound(state, ctx, item["sku"], item["qty"], record["fulfilment_id"])
            set_fulfilment_status(record, "shipped", ctx)
            set_fulfilment_status(record, "delivered", ctx)
        else:
            set_fulfilment_status(record, "released", ctx)
        put_fulfilment(state, record)
    invoice_shipped(state, ctx, order, fulfilments)
    sync_order_status(ctx, order, fulfilments)


def settle_order(state: StateView, ctx: Context, order: Order) -> None:
    """Put an allocated (or released) order in the status its fulfilments, backorder and payment call for:
    once paid its payment deadline goes and it is released; a released order follows its fulfilments. An
    intercepted order stays held: only an operator's release (`lift_interception`) hands it over."""
    if is_paid(order) and order["deadline_ms"] is not None:
        state.delete(keys.unpaid_key(order["deadline_ms"], order["order_id"]))
        order["deadline_ms"] = None
    if order["status"] in ("created", "on_hold", "cancelled"):
        return
    if order["released"]:
        fulfilments = get_order_fulfilments(state, order)
        invoice_shipped(state, ctx, order, fulfilments)
        sync_order_status(ctx, order, fulfilments)
    elif order["status"] == "intercepted":
        return
    elif is_paid(order):
        if order["status"] == "allocated":
            transition_order(order, "paid", ctx)
        release_order(state, ctx, order)
    elif order["backorder"]:
        if order["status"] != "backordered":
            transition_order(order, "backordered", ctx)
    elif order["status"] == "backordered":
        transition_order(order, "allocated", ctx)


def lift_interception(state: StateView, ctx: TxContext, order: Order, note: str) -> None:
    """End an interception: a released order follows its fulfilments again, a paid one not yet released is
    released now, and an unpaid one waits for its payment again (its deadline kept running meanwhile)."""
    if order["released"]:
        transition_order(order, compute_shipping_status(order, get_order_fulfilments(state, order)), ctx, note)
    elif is_paid(order):
        release_order(state, ctx, order)
    else:
        transition_order(order, "backordered" if order["backorder"] else "allocated", ctx, note)


def _open_step(state: StateView, fields: dict[str, Any], ctx: TxContext, allowed: tuple[str, ...]) -> Fulfilment:
    record = require_fulfilment(state, fields["fulfilment_id"])
    if record["virtual"]:
        raise Rejected("invalid_transition", "virtual fulfilments are delivered on release")
    require_location_access(ctx, require_location(state, record["location"]))
    if require_order(state, record["order_id"])["status"] == "intercepted":
        raise Rejected("order_intercepted", f"order {record['order_id']} is held; it ships once released")
    if record["status"] not in allowed:
        raise Rejected("invalid_transition", f"fulfilment {record['fulfilment_id']} is {record['status']}")
    return record


def process_fulfilment_pick(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The location has picked the goods."""
    record = _open_step(state, read_payload(PAYLOADS["fulfilment.pick"], tx.payload), ctx, ("released",))
    set_fulfilment_status(record, "picked", ctx)
    put_fulfilment(state, record)
    return {"fulfilment_id": record["fulfilment_id"], "status": "picked"}


def process_fulfilment_ship(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The goods left with a carrier: stock out through the journal, invoice, order status follows."""
    fields = read_payload(PAYLOADS["fulfilment.ship"], tx.payload)
    record = _open_step(state, fields, ctx, ("released", "picked"))
    record["carrier"] = fields["carrier"]
    record["tracking"] = fields["tracking"]
    for item in record["lines"]:
        entries = remove_stock(
            state, ctx, record["location"], item["sku"], item["qty"], "shipment", record["fulfilment_id"], reserved=True
        )
        item["lots"] = [[entry["lot"], -entry["delta"]] for entry in entries]
    set_fulfilment_status(record, "shipped", ctx)
    put_fulfilment(state, record)
    order = require_order(state, record["order_id"])
    fulfilments = get_order_fulfilments(state, order)
    invoices = invoice_shipped(state, ctx, order, fulfilments)
    sync_order_status(ctx, order, fulfilments)
    put_order(state, order)
    return {
        "fulfilment_id": record["fulfilment_id"],
        "status": "shipped",
        "order_status": order["status"],
        "invoices": invoices,
    }


def process_fulfilment_deliver(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The carrier delivered (or the customer collected) the goods."""
    fields = read_payload(PAYLOADS["fulfilment.deliver"], tx.payload)
    record = require_fulfilment(state, fields["fulfilment_id"])
    order = require_order(state, record["order_id"])
    if "channel" in ctx.signer.roles and not reaches_every_org(ctx.signer.roles, ctx.kind):
        require_order_access(ctx, order)
    else:
        require_location_access(ctx, require_location(state, record["location"]))
    if record["status"] != "shipped":
        raise Rejected("invalid_transition", f"fulfilment {record['fulfilment_id']} is {record['status']}")
    set_fulfilment_status(record, "delivered", ctx)
    put_fulfilment(state, record)
    sync_order_status(ctx, order, get_order_fulfilments(state, order))
    put_order(state, order)
    return {"fulfilment_id": record["fulfilment_id"], "status": "delivered", "order_status": order["status"]}
