"""Returns: requested by the channel, received at a location, credited; exchanges.

A return names goods of a delivered order by SKU and quantity; the ledger
assigns them to the fulfilments that delivered them (never more than was
delivered and not yet returned) and moves the order to `return_requested`.
When a location receives the goods they come back into stock through a
`return_in` journal entry, either sellable (on hand) or into the damaged
bucket, and each invoice that billed them gets a credit note referring to it.
Once nothing is awaited the order is `returned`; the channel's refund
(`payment.refund`) then makes it `refunded`. An exchange is a return plus a new
order for the replacement lines (on account, linked by `exchange_of`).
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.catalogue import require_location, require_location_access
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.inventory import BUCKETS, post_entry
from contracts.invoicing import credit_fulfilment_line
from contracts.lifecycle import (
    get_order_fulfilments,
    put_fulfilment,
    put_order,
    require_order,
    require_order_access,
    transition_order,
)
from contracts.orders import open_order
from contracts.payload import bad, get_choice, get_id, get_list, get_optional_id, get_qty, get_text
from ledger.state import StateView

ROLES: dict[str, frozenset[str]] = {
    "return.request": frozenset({"channel", "operator"}),
    "return.receive": frozenset({"store", "operator"}),
}

RETURNABLE = ("delivered", "completed", "returned", "refunded")
"""Order states from which goods may be returned."""


def compute_returned(record: dict[str, Any], line: int) -> int:
    return sum(part["qty"] for part in record["returned"] if part["line"] == line)


def assign_return_lines(
    state: StateView, order: dict[str, Any], requested: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Spread the requested SKU quantities over the delivered fulfilment lines, marking them returned."""
    fulfilments = [f for f in get_order_fulfilments(state, order) if f["status"] == "delivered"]
    assigned = []
    for want in requested:
        left = want["qty"]
        for record in fulfilments:
            for part in record["lines"]:
                if left == 0 or part["sku"] != want["sku"]:
                    continue
                take = min(left, part["qty"] - compute_returned(record, part["line"]))
                if take > 0:
                    record["returned"].append({"line": part["line"], "qty": take})
                    assigned.append(
                        {"fulfilment": record["fulfilment_id"], "line": part["line"], "sku": want["sku"], "qty": take}
                    )
                    left -= take
        if left:
            raise Rejected("not_returnable", f"{left} x {want['sku']} were not delivered or are already returned")
    for record in fulfilments:
        put_fulfilment(state, record)
    return assigned


def process_return_request(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The customer sends goods back (optionally in exchange for other lines)."""
    order = require_order(state, get_id(tx.payload, "order_id"))
    require_order_access(ctx, order)
    if order["status"] not in RETURNABLE:
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}")
    requested = [{"sku": get_id(item, "sku"), "qty": get_qty(item)} for item in get_list(tx.payload, "lines")]
    return_id = f"{order['order_id']}-R{len(order['returns']) + 1}"
    record: dict[str, Any] = {
        "return_id": return_id,
        "order_id": order["order_id"],
        "status": "requested",
        "reason": get_text(tx.payload, "reason", ""),
        "lines": assign_return_lines(state, order, requested),
        "exchange_order": None,
        "location": None,
        "condition": None,
        "credit_notes": [],
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
    }
    exchange = tx.payload.get("exchange")
    if exchange is not None:
        if type(exchange) is not list:
            raise bad("exchange must be a list of order lines")
        replacement = open_order(
            state,
            ctx,
            {
                "external_ref": return_id,
                "customer_hash": order["customer_hash"],
                "currency": order["currency"],
                "lines": exchange,
                "delivery": order["delivery"],
                "pickup": order["pickup"],
                "payment_terms": "on_account",
            },
            review=False,
            exchange_of=order["order_id"],
        )
        record["exchange_order"] = replacement["order_id"]
    if order["status"] != "return_requested":
        transition_order(order, "return_requested", ctx, record["reason"])
    order["returns"].append(return_id)
    put_order(state, order)
    state.put(keys.return_key(return_id), record)
    return {
        "return_id": return_id,
        "order_id": order["order_id"],
        "lines": record["lines"],
        "exchange_order": record["exchange_order"],
    }


def process_return_receive(state: StateView, tx: Any, ctx: TxContext) -> dict[str, Any]:
    """The returned goods arrived at a location: stock back in (or damaged), credit notes issued."""
    return_id = get_id(tx.payload, "return_id")
    record = state.get(keys.return_key(return_id))
    if record is None:
        raise Rejected("unknown_return", f"return {return_id} does not exist")
    if record["status"] != "requested":
        raise Rejected("invalid_transition", f"return {return_id} is {record['status']}")
    location = get_id(tx.payload, "location")
    require_location_access(ctx, require_location(state, location))
    condition = get_choice(tx.payload, "condition", BUCKETS, "sellable")
    lot = get_optional_id(tx.payload, "lot") or ""
    order = require_order(state, record["order_id"])
    by_id = {f["fulfilment_id"]: f for f in get_order_fulfilments(state, order)}
    for line in record["lines"]:
        post_entry(state, ctx, location, line["sku"], "return_in", return_id, line["qty"], bucket=condition, lot=lot)
        note = credit_fulfilment_line(
            state, ctx, order, by_id[line["fulfilment"]], line["line"], line["qty"], f"return {return_id}"
        )
        if note is not None:
            record["credit_notes"].append(note["number"])
    record.update(status="received", location=location, condition=condition)
    state.put(keys.return_key(return_id), record)
    awaited = [rid for rid in order["returns"] if rid != return_id and _is_awaited(state, rid)]
    if order["status"] == "return_requested" and not awaited:
        transition_order(order, "returned", ctx)
    put_order(state, order)
    return {
        "return_id": return_id,
        "status": "received",
        "order_status": order["status"],
        "credit_notes": record["credit_notes"],
    }


def _is_awaited(state: StateView, return_id: str) -> bool:
    record = state.get(keys.return_key(return_id))
    return record is not None and record["status"] == "requested"
