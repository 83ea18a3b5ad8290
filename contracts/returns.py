"""Returns: requested by the channel, received at a location (in parts), credited, cancelled or expired; exchanges.

A return names goods of a delivered order by SKU and quantity; the ledger
assigns them to the fulfilments that delivered them (never more than was
delivered and not yet returned, only within `returns.window_ms` of each
delivery, never virtual goods, which hold no stock) and moves the order to
`return_requested`. A return `reference` is unique per order, and a receipt's
`reference` unique per return: sent again with the same content it answers
the first result, with other content it is refused with
`duplicate_reference` (`references`), so a part received twice counts once.

The goods are received at a location of the organisation that shipped them,
all at once or in parts, each part with its condition: they come back into
stock through `return_in` journal entries, sellable (on hand) or damaged, and
the invoice that billed them gets a credit note referring to it; once every
unit an order invoiced is credited, its shipping charge is credited too. A
return not (fully) received can be cancelled, and expires by itself
`returns.expiry_ms` of block time after it was requested (at most
`returns.expiry_batch` per block, oldest first); what was not received is
returnable again. Once no return of the order is awaited the order is
`returned` if any goods came back, or `delivered` again if none did; refunds
(`payment.refund`) pay back the credit notes.

An exchange is a return plus a new order for the replacement lines, priced
from the catalogue and reviewed like any order (linked by `exchange_of`). It
is paid first from the credit notes of its return, as its goods come back (a
refund of those notes on the original order and a capture on the exchange),
then by the channel for any rest; it ships once paid. Its payment clock starts
when its return is received; a return cancelled or expired cancels an exchange
that has not been released.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from contracts import keys
from contracts.cancellation import cancel_order
from contracts.catalogue import require_known_location, require_location, require_location_access
from contracts.context import BlockContext, Context, TxContext
from contracts.errors import Rejected
from contracts.fulfilment import settle_order
from contracts.inventory import BUCKETS, post_entry
from contracts.invoicing import credit_fulfilment_line, credit_shipping
from contracts.lifecycle import (
    compute_amount_due,
    get_order_fulfilments,
    put_fulfilment,
    put_order,
    require_order,
    require_order_access,
    transition_order,
)
from contracts.orders import ORDER_LINES, open_order
from contracts.orders import PAYLOADS as ORDER_PAYLOADS
from contracts.payload import choice, ident, integer, items, payload, quantity, read_payload, text
from contracts.payments import compute_overpaid, mark_refunded, start_payment_clock
from contracts.records import Bucket, Fulfilment, Order, Return, ReturnLine, ReturnStatus
from contracts.references import hash_reference, recall, remember
from contracts.roles import roles_for
from contracts.settings import MAX_DURATION_MS, Setting
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("return.request", "return.receive", "return.cancel")

SETTINGS = (
    Setting(
        integer(
            "returns.window_ms",
            0,
            MAX_DURATION_MS,
            default=30 * 86_400_000,
            doc="how long after delivery goods may be returned (0: no limit)",
        )
    ),
    Setting(
        integer("returns.expiry_ms", 1, MAX_DURATION_MS, default=30 * 86_400_000, doc="how long a return is awaited")
    ),
    Setting(integer("returns.expiry_batch", 1, 200, default=50, doc="most returns expired per block"), governed=True),
)
"""The configuration keys of this module (`contracts.settings`)."""

RETURNABLE = ("delivered", "completed", "returned", "refunded", "return_requested")
"""Order states from which goods may be returned."""

AWAITED = ("requested", "partially_received")
"""Return states in which goods are still expected."""

PAYLOADS = {
    "return.request": payload(
        ident("order_id"),
        items("lines", ident("sku"), quantity(), doc="the goods sent back"),
        text("reason", default=""),
        text("reference", default="", doc="the channel's reference, taken once per order"),
        replace(
            ORDER_LINES,
            name="exchange",
            required=False,
            doc="replacement lines: a new order priced from the catalogue (a price or discount sent is ignored)",
        ),
    ),
    "return.receive": payload(
        ident("return_id"),
        ident("location", doc="a location of the organisation that shipped the goods"),
        choice("condition", BUCKETS, default="sellable", doc="of the goods received"),
        items(
            "lines",
            ident("sku"),
            quantity(),
            choice("condition", BUCKETS, required=False, doc="the payload's `condition` if absent"),
            required=False,
            doc="what arrived; everything awaited if absent",
        ),
        ident("lot", required=False, doc="the lot the goods come back into; if absent, the lot each line shipped from"),
        text("reference", default="", doc="the receiving location's reference, taken once per return"),
    ),
    "return.cancel": payload(ident("return_id")),
}
"""The payload of each tx kind of this module."""


def compute_returned(record: Fulfilment, line: int) -> int:
    return sum(part["qty"] for part in record["returned"] if part["line"] == line)


def get_delivered_ms(record: Fulfilment) -> int:
    return int(next(event["time_ms"] for event in reversed(record["events"]) if event["status"] == "delivered"))


def assign_return_lines(
    state: StateView, ctx: TxContext, order: Order, return_id: str, requested: list[dict[str, Any]]
) -> list[ReturnLine]:
    """Spread the requested SKU quantities over the delivered fulfilment lines, marking them returned."""
    window = int(ctx.config["returns.window_ms"])
    fulfilments = [
        f
        for f in get_order_fulfilments(state, order)
        if f["status"] == "delivered"
        and not f["virtual"]
        and (window == 0 or ctx.time_ms <= get_delivered_ms(f) + window)
    ]
    assigned: list[ReturnLine] = []
    for want in requested:
        left = want["qty"]
        for record in fulfilments:
            for part in record["lines"]:
                if left == 0 or part["sku"] != want["sku"]:
                    continue
                take = min(left, part["qty"] - compute_returned(record, part["line"]))
                if take > 0:
                    record["returned"].append({"line": part["line"], "qty": take, "return_id": return_id})
                    assigned.append(
                        {
                            "fulfilment": record["fulfilment_id"],
                            "line": part["line"],
                            "sku": want["sku"],
                            "qty": take,
                            "received": 0,
                        }
                    )
                    left -= take
        if left:
            raise Rejected(
                "not_returnable",
                f"{left} x {want['sku']} were not delivered within the return window, are virtual, or are returned",
            )
    for record in fulfilments:
        put_fulfilment(state, record)
    return assigned


def require_return(state: StateView, return_id: str) -> Return:
    record = state.get(keys.return_key(return_id))
    if record is None:
        raise Rejected("unknown_return", f"return {return_id} does not exist")
    return record


def _open_exchange(
    state: StateView, ctx: TxContext, order: Order, return_id: str, exchange: list[dict[str, Any]]
) -> str:
    """Open the replacement order of an exchange: catalogue prices, reviewed, paid by the return's credit."""
    fields = {
        "external_ref": return_id,
        "customer_hash": order["customer_hash"],
        "currency": order["currency"],
        "lines": [{"sku": item["sku"], "qty": item["qty"]} for item in exchange],
        "delivery": order["delivery"],
        "pickup": order["pickup"],
        "payment_terms": "prepaid",
    }
    replacement = open_order(
        state,
        ctx,
        read_payload(ORDER_PAYLOADS["order.create"], fields),
        review=True,
        exchange_of=order["order_id"],
    )
    return str(replacement["order_id"])


def process_return_request(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The customer sends goods back (optionally in exchange for other lines)."""
    fields = read_payload(PAYLOADS["return.request"], tx.payload)
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    reference = fields["reference"]
    reference_key = keys.return_reference_key(order["order_id"], hash_reference(reference))
    known = recall(state, reference_key, fields, reference) if reference else None
    if known is not None:
        return known
    if order["status"] not in RETURNABLE:
        raise Rejected("invalid_transition", f"order {order['order_id']} is {order['status']}")
    requested = fields["lines"]
    return_id = f"{order['order_id']}-R{len(order['returns']) + 1}"
    deadline = ctx.time_ms + int(ctx.config["returns.expiry_ms"])
    record: Return = {
        "return_id": return_id,
        "order_id": order["order_id"],
        "status": "requested",
        "reference": reference,
        "reason": fields["reason"],
        "lines": assign_return_lines(state, ctx, order, return_id, requested),
        "exchange_order": None,
        "receipts": [],
        "credit_notes": [],
        "deadline_ms": deadline,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
    }
    exchange = fields["exchange"]
    if exchange is not None:
        record["exchange_order"] = _open_exchange(state, ctx, order, return_id, exchange)
    if order["status"] != "return_requested":
        transition_order(order, "return_requested", ctx, record["reason"])
    order["returns"].append(return_id)
    put_order(state, order)
    state.put(keys.return_key(return_id), record)
    state.put(keys.return_due_key(deadline, return_id), return_id)
    result = {
        "return_id": return_id,
        "order_id": order["order_id"],
        "lines": record["lines"],
        "exchange_order": record["exchange_order"],
        "duplicate": False,
    }
    if reference:
        remember(state, reference_key, fields, result)
    return result


def read_receipt(fields: dict[str, Any], record: Return) -> list[tuple[ReturnLine, int, Bucket]]:
    """(return line, units, condition) received: the payload's `lines` [{sku, qty, condition}], or everything
    still awaited in the payload's `condition`."""
    default = fields["condition"]
    awaited = [line for line in record["lines"] if line["qty"] > line["received"]]
    if fields["lines"] is None:
        return [(line, line["qty"] - line["received"], default) for line in awaited]
    received: list[tuple[ReturnLine, int, Bucket]] = []
    for item in fields["lines"]:
        sku = item["sku"]
        left = item["qty"]
        condition = item["condition"] or default
        for line in awaited:
            if line["sku"] == sku and left > 0:
                open_qty = line["qty"] - line["received"] - sum(q for part, q, _ in received if part is line)
                take = min(left, open_qty)
                if take > 0:
                    received.append((line, take, condition))
                    left -= take
        if left:
            raise Rejected("not_returnable", f"{left} more x {sku} than return {record['return_id']} awaits")
    return received


def compute_shipped_lot(fulfilment: Fulfilment, order_line: int) -> str:
    """The lot returned units of `order_line` come back into when the receipt names none: the lot they shipped
    from (the first, if the line shipped from several: then the receiver names the lot it holds)."""
    for item in fulfilment["lines"]:
        if item["line"] == order_line and item.get("lots"):
            return str(item["lots"][0][0])
    return ""


def process_return_receive(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Returned goods arrived at a location of the organisation that shipped them: stock back in (or damaged),
    credit notes issued, an exchange paid from them."""
    fields = read_payload(PAYLOADS["return.receive"], tx.payload)
    record = require_return(state, fields["return_id"])
    return_id = record["return_id"]
    location = require_known_location(state, fields["location"])
    require_location_access(ctx, location)
    reference = fields["reference"]
    reference_key = keys.receipt_reference_key(return_id, hash_reference(reference))
    known = recall(state, reference_key, fields, reference) if reference else None
    if known is not None:
        return known
    require_location(state, location["location"])
    if record["status"] not in AWAITED:
        raise Rejected("invalid_transition", f"return {return_id} is {record['status']}")
    lot = fields["lot"] or ""
    order = require_order(state, record["order_id"])
    by_id = {f["fulfilment_id"]: f for f in get_order_fulfilments(state, order)}
    notes = []
    for line, qty, condition in read_receipt(fields, record):
        shipped_by = by_id[line["fulfilment"]]["org"]
        if shipped_by != location["org"]:
            raise Rejected("forbidden", f"{line['sku']} was shipped by {shipped_by}: return it to one of its locations")
        kept = lot or compute_shipped_lot(by_id[line["fulfilment"]], line["line"])
        post_entry(
            state, ctx, location["location"], line["sku"], "return_in", return_id, qty, bucket=condition, lot=kept
        )
        line["received"] += qty
        note = credit_fulfilment_line(
            state, ctx, order, by_id[line["fulfilment"]], line["line"], qty, f"return {return_id}"
        )
        if note is not None:
            notes.append(note)
        record["receipts"].append({"sku": line["sku"], "qty": qty, "condition": condition, "tx_id": ctx.tx_id})
    shipping = credit_shipping(state, ctx, order, f"return {return_id}: shipping")
    for note in [*notes, *([shipping] if shipping is not None else [])]:
        order["payment"]["credits"][note["number"]] = note["total"]
        record["credit_notes"].append(note["number"])
    record["location"] = location["location"]
    complete = all(line["received"] == line["qty"] for line in record["lines"])
    record["status"] = "received" if complete else "partially_received"
    if complete:
        state.delete(keys.return_due_key(record["deadline_ms"], return_id))
    state.put(keys.return_key(return_id), record)
    settle_returns(state, ctx, order)
    if record["exchange_order"] is not None:
        pay_exchange(state, ctx, order, record, [note["number"] for note in notes])
        mark_refunded(order, ctx)
    put_order(state, order)
    result = {
        "return_id": return_id,
        "status": record["status"],
        "order_status": order["status"],
        "credit_notes": [note["number"] for note in notes],
        "duplicate": False,
    }
    if reference:
        remember(state, reference_key, fields, result)
    return result


def pay_exchange(state: StateView, ctx: TxContext, order: Order, record: Return, notes: list[str]) -> None:
    """Pay the exchange order from the return's new credit notes: refunded on the original, captured on the
    exchange; once its return is received the exchange's payment clock starts for any rest."""
    if record["exchange_order"] is None:
        return
    exchange = require_order(state, record["exchange_order"])
    if exchange["status"] == "cancelled":
        return
    payment = order["payment"]
    for number in notes:
        left = min(
            compute_amount_due(exchange) - exchange["payment"]["captured"],
            compute_overpaid(order),
            payment["credits"][number] - payment["refunded_by"].get(number, 0),
        )
        if left <= 0:
            continue
        payment["refunded"] += left
        payment["refunded_by"][number] = payment["refunded_by"].get(number, 0) + left
        payment["events"].append(
            {
                "kind": "refunded",
                "reference": f"exchange {exchange['order_id']}",
                "covers": [[number, left]],
                "amount": left,
                "tx_id": ctx.tx_id,
                "height": ctx.height,
                "time_ms": ctx.time_ms,
            }
        )
        exchange["payment"]["captured"] += left
        exchange["payment"]["events"].append(
            {
                "kind": "captured",
                "reference": f"return {record['return_id']}",
                "amount": left,
                "tx_id": ctx.tx_id,
                "height": ctx.height,
                "time_ms": ctx.time_ms,
            }
        )
    if record["status"] == "received":
        exchange["awaiting_return"] = False
        start_payment_clock(state, ctx, exchange)
    settle_order(state, ctx, exchange)
    put_order(state, exchange)


def settle_returns(state: StateView, ctx: Context, order: Order) -> None:
    """Once no return of the order is awaited: `returned` if goods came back, else `delivered` again."""
    if order["status"] != "return_requested":
        return
    records = [require_return(state, return_id) for return_id in order["returns"]]
    if any(r["status"] in AWAITED for r in records):
        return
    came_back = any(line["received"] for r in records for line in r["lines"])
    transition_order(order, "returned" if came_back else "delivered", ctx)


def close_return(state: StateView, ctx: Context, record: Return, status: ReturnStatus) -> None:
    """End an awaited return (cancelled or expired): what was not received is returnable again, an exchange not
    released is cancelled."""
    order = require_order(state, record["order_id"])
    return_id = record["return_id"]
    for fulfilment in get_order_fulfilments(state, order):
        if not any(part["return_id"] == return_id for part in fulfilment["returned"]):
            continue
        for part in fulfilment["returned"]:
            if part["return_id"] == return_id:
                part["qty"] = sum(
                    line["received"]
                    for line in record["lines"]
                    if line["fulfilment"] == fulfilment["fulfilment_id"] and line["line"] == part["line"]
                )
        fulfilment["returned"] = [part for part in fulfilment["returned"] if part["qty"] > 0]
        put_fulfilment(state, fulfilment)
    record["status"] = status
    state.delete(keys.return_due_key(record["deadline_ms"], return_id))
    state.put(keys.return_key(return_id), record)
    if record["exchange_order"] is not None:
        exchange = require_order(state, record["exchange_order"])
        if not exchange["released"] and exchange["status"] != "cancelled":
            cancel_order(state, ctx, exchange, f"return {return_id} {status}")
            put_order(state, exchange)
    settle_returns(state, ctx, order)
    put_order(state, order)


def process_return_cancel(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The customer will not send (the rest of) the goods."""
    fields = read_payload(PAYLOADS["return.cancel"], tx.payload)
    record = require_return(state, fields["return_id"])
    require_order_access(ctx, require_order(state, record["order_id"]))
    if record["status"] not in AWAITED:
        raise Rejected("invalid_transition", f"return {record['return_id']} is {record['status']}")
    close_return(state, ctx, record, "cancelled")
    order = require_order(state, record["order_id"])
    return {"return_id": record["return_id"], "status": "cancelled", "order_status": order["status"]}


def begin_block(state: StateView, ctx: BlockContext) -> None:
    """Expire the awaited returns whose time is up, oldest first, a bounded batch, each in its own savepoint."""
    batch = int(ctx.config["returns.expiry_batch"])
    due: list[tuple[str, str]] = []
    for key, return_id in state.scan(keys.RETURN_DUE_PREFIX):
        if len(due) == batch or int(key.split("/")[1]) > ctx.time_ms:
            break
        due.append((key, return_id))
    for key, return_id in due:
        state.begin()
        try:
            close_return(state, ctx, require_return(state, return_id), "expired")
        except Rejected:
            state.rollback()
            state.delete(key)
            continue
        state.commit()
