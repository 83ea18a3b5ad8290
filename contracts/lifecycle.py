"""The order lifecycle: named states, the one table of allowed transitions, history, sub-orders.

Every status change goes through `transition_order`, which refuses a move the
table does not allow and appends who made it, which tx and at which block
time to the order's history. So an order's history is always a path through
`TRANSITIONS` starting at `created`.

An order is served by fulfilments (sub-orders), one per shipping location,
numbered from the order. A fulfilment is `allocated` (stock reserved), then
`released` to its location once the order is paid, `picked`, `shipped` and
`delivered`; or `declined` by its location or `cancelled` with the order.
Once an order is released its status follows its fulfilments
(`sync_order_status`), except that an intercepted one stays held until an
operator releases it or it has nothing left to ship: neither a payment nor
stock sourced for it lifts an interception. `completed` and `cancelled` are
final; from every other state some role has a tx that moves the order on.
`put_order` keeps the index of orders waiting for stock in step with the
order's backorder.
"""

from __future__ import annotations

from contracts import keys
from contracts.context import BlockContext, TxContext
from contracts.errors import Rejected
from contracts.records import Fulfilment, FulfilmentStatus, Order, OrderStatus
from contracts.roles import reaches_every_org
from ledger.state import StateView

TRANSITIONS: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    "created": ("on_hold", "allocated", "backordered", "cancelled"),
    "on_hold": ("allocated", "backordered", "cancelled"),
    "allocated": ("on_hold", "paid", "released", "backordered", "cancelled"),
    "backordered": ("allocated", "released", "partially_shipped", "shipped", "delivered", "intercepted", "cancelled"),
    "paid": ("released", "backordered", "cancelled"),
    "released": ("partially_shipped", "shipped", "delivered", "backordered", "intercepted", "cancelled"),
    "intercepted": ("allocated", "released", "backordered", "partially_shipped", "shipped", "delivered", "cancelled"),
    "partially_shipped": ("shipped", "delivered", "backordered", "intercepted"),
    "shipped": ("delivered",),
    "delivered": ("completed", "return_requested"),
    "completed": ("return_requested",),
    "return_requested": ("returned", "refunded", "delivered"),
    "returned": ("refunded", "return_requested", "completed"),
    "refunded": ("return_requested", "completed"),
    "cancelled": (),
}
"""Allowed next states of each state; `created` is where every order starts."""

FINAL_STATES: tuple[OrderStatus, ...] = ("completed", "cancelled")
"""States in which an order's goods and money are settled (a completed order may still see a return)."""

INITIAL_STATE: OrderStatus = "created"
"""The state of a new order."""

AWAITING_PAYMENT: tuple[OrderStatus, ...] = ("created", "allocated", "backordered", "intercepted")
"""States in which a prepaid order may still be cancelled for non-payment (an order in review waits for its
reviewer, and its payment deadline starts when it is approved; an interception does not stop the clock)."""

SYSTEM_ACTOR = "ledger"
"""The `by` of transitions the ledger makes by itself (timeouts)."""


def is_allowed_transition(source: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS.get(source, ())


def get_order(state: StateView, order_id: str) -> Order | None:
    return state.get(keys.order_key(order_id))


def require_order(state: StateView, order_id: str) -> Order:
    order = get_order(state, order_id)
    if order is None:
        raise Rejected("unknown_order", f"order {order_id} does not exist")
    return order


def put_order(state: StateView, order: Order) -> None:
    """Store the order, keeping the index of orders waiting for stock (`keys.backorder_key`) in step."""
    order_id = order["order_id"]
    state.put(keys.order_key(order_id), order)
    index = keys.backorder_key(order_id)
    if order["backorder"] and order["status"] not in FINAL_STATES:
        state.put(index, order_id)
    elif state.get(index) is not None:
        state.delete(index)


def require_order_access(ctx: TxContext, order: Order) -> None:
    """The signer acts on `order` as the roles table says (`contracts.roles`): a role that reaches every
    organisation for this kind on any order; a channel on the orders it placed; anyone else on its own
    organisation's."""
    if reaches_every_org(ctx.signer.roles, ctx.kind):
        return
    if "channel" in ctx.signer.roles:
        if ctx.signer.id != order["channel"]:
            raise Rejected("forbidden", f"order {order['order_id']} belongs to another channel")
    elif ctx.signer.org != order["org"]:
        raise Rejected("forbidden", f"order {order['order_id']} belongs to another organisation")


def transition_order(order: Order, target: OrderStatus, ctx: TxContext | BlockContext, reason: str = "") -> None:
    """Move `order` to `target` (in memory; the caller puts it) and record the step in its history."""
    source = order["status"]
    if not is_allowed_transition(source, target):
        raise Rejected("invalid_transition", f"order {order['order_id']} cannot go from {source} to {target}")
    order["status"] = target
    order["history"].append(
        {
            "from": source,
            "to": target,
            "by": ctx.signer.id if isinstance(ctx, TxContext) else SYSTEM_ACTOR,
            "tx_id": ctx.tx_id if isinstance(ctx, TxContext) else None,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
            "reason": reason,
        }
    )


OPEN_FULFILMENT: tuple[FulfilmentStatus, ...] = ("allocated", "released", "picked")
"""Fulfilment states that hold a stock reservation."""

SENT_FULFILMENT: tuple[FulfilmentStatus, ...] = ("shipped", "delivered")
"""Fulfilment states whose goods have left the location."""

ENDED_FULFILMENT: tuple[FulfilmentStatus, ...] = ("declined", "cancelled")
"""Fulfilment states that no longer serve the order."""


DAY_MS = 86_400_000
"""Length of a capacity day in block time."""


def count_capacity(state: StateView, location: str, time_ms: int, delta: int) -> None:
    """Count a fulfilment in (1) or out (-1) of the daily capacity of `location` on the day of `time_ms`."""
    day_key = keys.capacity_key(location, time_ms // DAY_MS)
    used = int(state.get(day_key) or 0) + delta
    if used > 0:
        state.put(day_key, used)
    else:
        state.delete(day_key)


def end_fulfilment(
    state: StateView, ctx: TxContext | BlockContext, record: Fulfilment, target: FulfilmentStatus
) -> None:
    """A fulfilment declined or cancelled: it no longer serves its order, and its location gets back the daily
    capacity it took on the day it was allocated (the caller puts the record)."""
    if not record["virtual"]:
        count_capacity(state, record["location"], record["events"][0]["time_ms"], -1)
    set_fulfilment_status(record, target, ctx)


def get_fulfilment(state: StateView, fulfilment_id: str) -> Fulfilment | None:
    return state.get(keys.fulfilment_key(fulfilment_id))


def require_fulfilment(state: StateView, fulfilment_id: str) -> Fulfilment:
    record = get_fulfilment(state, fulfilment_id)
    if record is None:
        raise Rejected("unknown_fulfilment", f"fulfilment {fulfilment_id} does not exist")
    return record


def put_fulfilment(state: StateView, record: Fulfilment) -> None:
    state.put(keys.fulfilment_key(record["fulfilment_id"]), record)


def get_order_fulfilments(state: StateView, order: Order) -> list[Fulfilment]:
    """The order's fulfilments in creation order."""
    return [require_fulfilment(state, fid) for fid in order["fulfilments"]]


def set_fulfilment_status(record: Fulfilment, target: FulfilmentStatus, ctx: TxContext | BlockContext) -> None:
    record["status"] = target
    record["events"].append(
        {
            "status": target,
            "by": ctx.signer.id if isinstance(ctx, TxContext) else SYSTEM_ACTOR,
            "tx_id": ctx.tx_id if isinstance(ctx, TxContext) else None,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
        }
    )


def compute_amount_due(order: Order) -> int:
    """What the customer owes for the order: its total less what was cancelled."""
    return int(order["total"]) - int(order["payment"]["cancelled"])


def is_paid(order: Order) -> bool:
    """Whether the order may be released: what is due is captured (a zero total is paid by definition), or it
    is sold on account."""
    return order["payment_terms"] == "on_account" or order["payment"]["captured"] >= compute_amount_due(order)


def compute_shipping_status(order: Order, fulfilments: list[Fulfilment]) -> OrderStatus:
    """The status a released order should have, given its fulfilments."""
    if order["backorder"]:
        return "backordered"
    active = [f for f in fulfilments if f["status"] not in ENDED_FULFILMENT]
    if active and all(f["status"] == "delivered" for f in active):
        return "delivered"
    if active and all(f["status"] in SENT_FULFILMENT for f in active):
        return "shipped"
    if any(f["status"] in SENT_FULFILMENT for f in active):
        return "partially_shipped"
    return "released"


SHIPPING_STATES: tuple[OrderStatus, ...] = ("released", "backordered", "intercepted", "partially_shipped", "shipped")
"""States of a released order whose status follows its fulfilments; once delivered it follows its returns and
payments (a capture on an order whose return is awaited leaves it awaiting the return)."""


def sync_order_status(ctx: TxContext | BlockContext, order: Order, fulfilments: list[Fulfilment]) -> None:
    """Make a released order's status follow its `fulfilments` (as stored, `get_order_fulfilments`) until they
    are delivered (an intercepted order stays held until released)."""
    if order["status"] not in SHIPPING_STATES:
        return
    target = compute_shipping_status(order, fulfilments)
    if order["status"] == "intercepted" and target in ("released", "backordered", "partially_shipped"):
        return
    if target != order["status"]:
        transition_order(order, target, ctx)
