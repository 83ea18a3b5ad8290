"""Fulfilment: releasing a paid order to its locations, then picked, shipped and delivered.

When an order is paid (or sold on account) and fully allocated it is released:
its fulfilments go to their locations, and virtual goods are delivered at once
(a `virtual_outbound` journal entry, no stock). The location marks its
fulfilment picked, shipped (with carrier and tracking; the reserved stock
leaves through `shipment` journal entries, lot by lot) and delivered. Each
shipment is invoiced as `invoicing` is configured, and the order's status
follows its fulfilments.
"""

from __future__ import annotations

from typing import Any

from contracts.catalogue import require_location, require_location_access
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.inventory import record_virtual_outbound, remove_stock
from contracts.invoicing import invoice_shipped
from contracts.lifecycle import (
    get_order_fulfilments,
    put_fulfilment,
    put_order,
    require_fulfilment,
    require_order,
    set_fulfilment_status,
    sync_order_status,
    transition_order,
)
from contracts.payload import get_id, get_text
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "fulfilment.pick": frozenset({"store", "operator"}),
    "fulfilment.ship": frozenset({"store", "operator"}),
    "fulfilment.deliver": frozenset({"store", "operator", "channel"}),
}


def release_order(state: StateView, ctx: TxContext, order: dict[str, Any]) -> None:
    """Hand a fully allocated, paid order to its locations; deliver its virtual goods at once."""
    if order["status"] != "released":
        transition_order(order, "released", ctx)
    order["released"] = True
    for record in get_order_fulfilments(state, order):
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
    invoice_shipped(state, ctx, ctx.config, order)
    sync_order_status(state, ctx, order)


def _open_step(state: StateView, tx: Any, ctx: TxContext, allowed: tuple[str, ...]) -> dict[str, Any]:
    record = require_fulfilment(state, get_id(tx.payload, "fulfilment_id"))
    if record["virtual"]:
        raise Rejected("invalid_transition", "virtual fulfilments are delivered on release")
    require_location_access(ctx, require_location(state, record["location"]))
    if record["status"] not in allowed:
        raise Rejected("invalid_transition", f"fulfilment {record['fulfilment_id']} is {record['status']}")
    return record


def process_fulfilment_pick(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The location has picked the goods."""
    record = _open_step(state, tx, ctx, ("released",))
    set_fulfilment_status(record, "picked", ctx)
    put_fulfilment(state, record)
    return {"fulfilment_id": record["fulfilment_id"], "status": "picked"}


def process_fulfilment_ship(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The goods left with a carrier: stock out through the journal, invoice, order status follows."""
    record = _open_step(state, tx, ctx, ("released", "picked"))
    record["carrier"] = get_text(tx.payload, "carrier")
    record["tracking"] = get_text(tx.payload, "tracking", "")
    for item in record["lines"]:
        entries = remove_stock(
            state, ctx, record["location"], item["sku"], item["qty"], "shipment", record["fulfilment_id"], reserved=True
        )
        item["lots"] = [[entry["lot"], -entry["delta"]] for entry in entries]
    set_fulfilment_status(record, "shipped", ctx)
    put_fulfilment(state, record)
    order = require_order(state, record["order_id"])
    invoices = invoice_shipped(state, ctx, ctx.config, order)
    sync_order_status(state, ctx, order)
    put_order(state, order)
    return {
        "fulfilment_id": record["fulfilment_id"],
        "status": "shipped",
        "order_status": order["status"],
        "invoices": invoices,
    }


def process_fulfilment_deliver(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The carrier delivered (or the customer collected) the goods."""
    record = require_fulfilment(state, get_id(tx.payload, "fulfilment_id"))
    if "store" in ctx.signer.roles and "operator" not in ctx.signer.roles:
        require_location_access(ctx, require_location(state, record["location"]))
    order = require_order(state, record["order_id"])
    if "channel" in ctx.signer.roles and ctx.signer.id != order["channel"]:
        raise Rejected("forbidden", f"order {order['order_id']} belongs to channel {order['channel']}")
    if record["status"] != "shipped":
        raise Rejected("invalid_transition", f"fulfilment {record['fulfilment_id']} is {record['status']}")
    set_fulfilment_status(record, "delivered", ctx)
    put_fulfilment(state, record)
    sync_order_status(state, ctx, order)
    put_order(state, order)
    return {"fulfilment_id": record["fulfilment_id"], "status": "delivered", "order_status": order["status"]}
