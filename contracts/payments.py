"""Payment facts from the channel, refunds tied to what they pay back, and the cancellation of unpaid orders.

The ledger does not move money: the channel, the payment provider (an
identity with the `payment_provider` role, for its organisation's orders) or
an operator records that a payment was authorised, captured or refunded, with
its amount and the provider's reference. With `payments.capture_requires_provider`
set (an operator's choice, off by default) a capture counts only from the
payment provider's own identity: one signed by anyone else is refused with
`forbidden_role`, so the money an order is released on is the provider's
word, not the shop's. A reference is unique per order: sent again with the
same kind and content it answers the first result and changes nothing; with
anything else it is refused with `duplicate_reference` (`references`). Capturing what is due
releases the order (`fulfilment.settle_order`).

A refund pays back a cancellation or a credit note, never more than they
amount to, and never more than the customer paid beyond what they owe (the
total less what is cancelled or credited): a refund naming `credit_note`
pays back that note; one without is tied to the cancellations first, then to
the credit notes in number order, and the event records what it covers. A
returned order becomes `refunded` only once everything captured is refunded.

A prepaid order's payment clock starts when it is allocated (an order in
review waits for its reviewer): unpaid after `orders.unpaid_timeout_ms` of
block time, what is left of it is cancelled in `begin_block`, identically on
every node. At most `orders.timeout_batch` due orders are cancelled per
block, oldest deadline first, each in a savepoint of its own; the rest wait
for the next blocks. An order that cannot be cancelled leaves the index
rather than block it.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.cancellation import cancel_order
from contracts.context import BlockContext, TxContext
from contracts.errors import Rejected
from contracts.fulfilment import settle_order
from contracts.lifecycle import (
    AWAITING_PAYMENT,
    compute_amount_due,
    get_order,
    is_paid,
    put_order,
    require_order,
    require_order_access,
    transition_order,
)
from contracts.payload import MAX_AMOUNT, boolean, ident, integer, payload, read_payload, text
from contracts.records import Order, PaymentKind
from contracts.references import hash_reference, recall, remember
from contracts.roles import roles_for
from contracts.settings import MAX_DURATION_MS, Setting
from ledger.state import StateView
from ledger.tx import Tx

PROVIDER_ROLE = "payment_provider"
"""The role of a payment service's identity."""

ROLES = roles_for("payment.authorize", "payment.capture", "payment.refund")

SETTINGS = (
    Setting(
        integer(
            "orders.unpaid_timeout_ms",
            1,
            MAX_DURATION_MS,
            default=1_800_000,
            doc="how long (block time) a prepaid order may stay unpaid",
        )
    ),
    Setting(
        integer("orders.timeout_batch", 1, 200, default=50, doc="most unpaid orders cancelled per block"), governed=True
    ),
    Setting(
        boolean(
            "payments.capture_requires_provider",
            default=False,
            doc="whether only a payment provider's identity may capture",
        )
    ),
)
"""The configuration keys of this module (`contracts.settings`)."""

PAYMENT_FIELDS = (
    ident("order_id"),
    integer("amount", 1, MAX_AMOUNT, doc="minor units"),
    text("reference", min_length=1, doc="the payment provider's reference, taken once per order"),
)
"""What every payment tx names."""

PAYLOADS = {
    "payment.authorize": payload(*PAYMENT_FIELDS),
    "payment.capture": payload(*PAYMENT_FIELDS),
    "payment.refund": payload(*PAYMENT_FIELDS, ident("credit_note", required=False, doc="the note it pays back")),
}
"""The payload of each tx kind of this module."""

CANCELLATION_SOURCE = "cancellation"
"""What a refund of cancelled goods is tied to (credit notes are named by their number)."""


def start_payment_clock(state: StateView, ctx: TxContext, order: Order) -> None:
    """Give an unpaid prepaid order its payment deadline (the caller puts the order); an exchange waits for its
    return instead."""
    if order["payment_terms"] != "prepaid" or is_paid(order) or order["deadline_ms"] is not None:
        return
    if order["awaiting_return"]:
        return
    deadline = ctx.time_ms + int(ctx.config["orders.unpaid_timeout_ms"])
    order["deadline_ms"] = deadline
    state.put(keys.unpaid_key(deadline, order["order_id"]), order["order_id"])


def compute_refundable(order: Order) -> dict[str, int]:
    """What each source (the cancellations, each credit note) may still have refunded."""
    payment = order["payment"]
    refunded = payment["refunded_by"]
    sources = {CANCELLATION_SOURCE: payment["cancelled"], **payment["credits"]}
    return {source: amount - refunded.get(source, 0) for source, amount in sources.items()}


def compute_overpaid(order: Order) -> int:
    """What the customer has paid beyond what they owe: captured less refunded, less the order total that is
    neither cancelled nor credited."""
    payment = order["payment"]
    owed = order["total"] - payment["cancelled"] - sum(payment["credits"].values())
    return int(payment["captured"] - payment["refunded"] - owed)


def compute_refund_due(order: Order) -> int:
    """What the customer is owed back now: what they overpaid, as far as cancellations and credit notes cover it."""
    return max(0, min(compute_overpaid(order), sum(compute_refundable(order).values())))


def mark_refunded(order: Order, ctx: TxContext) -> None:
    """A returned order whose captured money is all refunded becomes `refunded`."""
    if order["status"] == "returned" and order["payment"]["refunded"] == order["payment"]["captured"]:
        transition_order(order, "refunded", ctx)


def _payment_result(order: Order) -> dict[str, Any]:
    payment = order["payment"]
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "authorized": payment["authorized"],
        "captured": payment["captured"],
        "refunded": payment["refunded"],
        "refund_due": compute_refund_due(order),
    }


def _record(
    state: StateView, fields: dict[str, Any], ctx: TxContext, kind: PaymentKind
) -> tuple[Order, int, dict[str, Any] | None]:
    """The order, the amount, and the first result if this reference was recorded already with the same content."""
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    amount: int = fields["amount"]
    reference = fields["reference"]
    key = keys.payment_reference_key(order["order_id"], hash_reference(reference))
    known = recall(state, key, fields | {"kind": kind}, reference)
    if known is not None:
        return order, amount, known
    order["payment"]["events"].append(
        {
            "kind": kind,
            "amount": amount,
            "reference": reference,
            "tx_id": ctx.tx_id,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
        }
    )
    return order, amount, None


def _remember(state: StateView, order: Order, fields: dict[str, Any], kind: PaymentKind) -> dict[str, Any]:
    """Store the order and what its reference answered (the first result, for a re-sent reference)."""
    put_order(state, order)
    result = {**_payment_result(order), "duplicate": False}
    key = keys.payment_reference_key(order["order_id"], hash_reference(fields["reference"]))
    remember(state, key, fields | {"kind": kind}, result)
    return result


def process_payment_authorize(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The payment provider authorised an amount for the order."""
    fields = read_payload(PAYLOADS["payment.authorize"], tx.payload)
    order, amount, known = _record(state, fields, ctx, "authorized")
    if known is not None:
        return known
    if order["status"] == "cancelled":
        raise Rejected("invalid_transition", f"order {order['order_id']} is cancelled")
    order["payment"]["authorized"] += amount
    return _remember(state, order, fields, "authorized")


def require_capture_role(ctx: TxContext) -> None:
    """Refuse a capture by anyone but a payment provider while the operators require one."""
    if ctx.config["payments.capture_requires_provider"] and PROVIDER_ROLE not in ctx.signer.roles:
        raise Rejected(
            "forbidden_role",
            f"{ctx.signer.id} may not capture: captures must come from a {PROVIDER_ROLE} identity "
            "(payments.capture_requires_provider)",
        )


def process_payment_capture(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Money was captured; once what is due is captured the order stops timing out and is released."""
    require_capture_role(ctx)
    fields = read_payload(PAYLOADS["payment.capture"], tx.payload)
    order, amount, known = _record(state, fields, ctx, "captured")
    if known is not None:
        return known
    if order["status"] == "cancelled":
        raise Rejected("invalid_transition", f"order {order['order_id']} is cancelled")
    payment = order["payment"]
    if payment["captured"] + amount > compute_amount_due(order):
        raise Rejected("over_payment", f"order {order['order_id']} has {compute_amount_due(order)} due")
    payment["captured"] += amount
    settle_order(state, ctx, order)
    return _remember(state, order, fields, "captured")


def process_payment_refund(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Money was paid back for a cancellation or a credit note (`credit_note`), never more than they amount to."""
    fields = read_payload(PAYLOADS["payment.refund"], tx.payload)
    order, amount, known = _record(state, fields, ctx, "refunded")
    if known is not None:
        return known
    payment = order["payment"]
    if amount > compute_overpaid(order):
        raise Rejected("over_refund", f"the customer paid {max(compute_overpaid(order), 0)} beyond what they owe")
    refundable = compute_refundable(order)
    note = fields["credit_note"]
    if note is not None and note not in payment["credits"]:
        raise Rejected("unknown_credit_note", f"{note} is not a credit note of order {order['order_id']}")
    sources = [note] if note is not None else list(refundable)
    covers = []
    left = amount
    for source in sources:
        take = min(left, refundable[source])
        if take > 0:
            covers.append([source, take])
            payment["refunded_by"][source] = payment["refunded_by"].get(source, 0) + take
            left -= take
    if left:
        raise Rejected(
            "over_refund",
            f"refunds pay back cancellations and credit notes: only {amount - left} of {amount} is refundable",
        )
    payment["refunded"] += amount
    payment["events"][-1]["covers"] = covers
    mark_refunded(order, ctx)
    return _remember(state, order, fields, "refunded")


def begin_block(state: StateView, ctx: BlockContext) -> None:
    """Cancel the unpaid prepaid orders whose deadline passed by this block's time, oldest first, a bounded batch."""
    batch = int(ctx.config["orders.timeout_batch"])
    due: list[tuple[str, str]] = []
    for key, order_id in state.scan(keys.UNPAID_PREFIX):
        if len(due) == batch or int(key.split("/")[1]) > ctx.time_ms:
            break
        due.append((key, order_id))
    for key, order_id in due:
        state.delete(key)
        order = get_order(state, order_id)
        if order is None or order["status"] not in AWAITING_PAYMENT or is_paid(order):
            continue
        order["deadline_ms"] = None
        state.begin()
        try:
            cancel_order(state, ctx, order, "payment timeout")
            put_order(state, order)
        except Rejected:
            state.rollback()
            continue
        state.commit()
