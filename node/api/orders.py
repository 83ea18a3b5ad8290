"""Orders: lists by status, channel, location or date from the node's indexes, one order in full, and writes.

`GET /v1/orders` walks one index range (`node.indexes`): by `status`, else
`location`, else `channel`, else by creation time (or by last update when only
an updated range is given); the other filters are checked on each order. A
store's or channel's token lists its organisation's orders, operators and
auditors every order. Writes (placing an order, acting on an order or a
fulfilment) are txs the node signs for the token's identity (`node.api.writes`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response

from contracts import keys, queries
from contracts.lifecycle import get_fulfilment
from contracts.orders import get_order_by_external_ref
from ledger.encoding import MAX_INT
from ledger.state import StateView
from ledger.store import Store
from node.api.deps import authorize, get_node, get_state
from node.api.errors import InvalidRequest, NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, Order, OrderSummary, Page, WriteResult
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.api.writes import IdempotencyKey, Wait, submit_as
from node.indexes import ALL_SCOPE, OrderRange, get_order_meta, scan_orders
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["orders"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize("orders:read"))]
Writer = Annotated[Principal, Depends(authorize("orders:write"))]
Payload = Annotated[dict[str, Any], Body(description="the tx payload (see docs/spec/transactions.md)")]

ORDER_ACTIONS = {
    "cancel": "order.cancel",
    "approve": "order.approve",
    "reject": "order.reject",
    "allocate": "order.allocate",
    "complete": "order.complete",
    "authorize-payment": "payment.authorize",
    "pay": "payment.capture",
    "refund": "payment.refund",
    "request-return": "return.request",
}
"""`POST /v1/orders/{order_id}/{action}` -> the tx kind it sends (payload: the body and `order_id`)."""

FULFILMENT_ACTIONS = {
    "pick": "fulfilment.pick",
    "ship": "fulfilment.ship",
    "deliver": "fulfilment.deliver",
    "decline": "fulfilment.decline",
}
"""`POST /v1/fulfilments/{fulfilment_id}/{action}` -> the tx kind it sends."""

OrderAction = Literal[
    "cancel", "approve", "reject", "allocate", "complete", "authorize-payment", "pay", "refund", "request-return"
]
FulfilmentAction = Literal["pick", "ship", "deliver", "decline"]
TimeMs = Annotated[int | None, Query(ge=0, le=MAX_INT, description="milliseconds since the epoch (block time)")]


@router.get(
    "/orders",
    response_model=Page[OrderSummary],
    responses={400: {"model": ErrorBody}},
    summary="Orders by status, channel, location, created or updated time, oldest first; or by external_ref",
)
async def list_orders(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    status: str | None = None,
    channel: str | None = None,
    location: str | None = None,
    external_ref: Annotated[str | None, Query(description="the channel's reference (with `channel`)")] = None,
    created_min: TimeMs = None,
    created_max: TimeMs = None,
    updated_min: TimeMs = None,
    updated_max: TimeMs = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    if external_ref is not None:
        return Page(items=find_by_external_ref(node, state, reader, channel, external_ref))
    scope = ALL_SCOPE if reader.sees_all else reader.org
    created = (created_min or 0, MAX_INT if created_max is None else created_max + 1)
    updated = (updated_min or 0, MAX_INT if updated_max is None else updated_max + 1)
    if status is not None:
        query = OrderRange(scope, "status", status, *created)
    elif location is not None:
        query = OrderRange(scope, "location", location, *created)
    elif channel is not None:
        query = OrderRange(scope, "channel", channel, *created)
    elif (updated_min, updated_max) != (None, None) and (created_min, created_max) == (None, None):
        query = OrderRange(scope, "updated", "", *updated)
    else:
        query = OrderRange(scope, "created", "", *created)

    def render(order_id: str) -> dict[str, Any] | None:
        summary = summarize(node.store, state, order_id)
        if summary is None:
            return None
        wanted = (
            (status is None or summary["status"] == status)
            and (channel is None or summary["channel"] == channel)
            and (location is None or location in summary["locations"])
            and created[0] <= summary["created_ms"] < created[1]
            and updated[0] <= summary["updated_ms"] < updated[1]
        )
        return summary if wanted else None

    after = decode_cursor(cursor)
    if after is not None and not after.startswith(query.prefix):
        raise InvalidRequest("cursor belongs to a list with other filters")
    items, next_cursor = collect(scan_orders(node.store, query, after), limit, render)
    return Page(items=items, next_cursor=next_cursor)


def summarize(store: Store, state: StateView, order_id: str) -> dict[str, Any] | None:
    """An order as lists show it, from its record and what the indexes know of it."""
    order = state.get(keys.order_key(order_id))
    meta = get_order_meta(store, order_id)
    if order is None or meta is None:
        return None
    return {
        "order_id": order["order_id"],
        "channel": order["channel"],
        "org": order["org"],
        "external_ref": order["external_ref"],
        "status": order["status"],
        "currency": order["currency"],
        "total": order["total"],
        "created_ms": order["created_ms"],
        "updated_ms": meta.updated_ms,
        "locations": meta.locations,
    }


def find_by_external_ref(
    node: Node, state: StateView, reader: Principal, channel: str | None, external_ref: str
) -> list[dict[str, Any]]:
    """The order a channel placed with `external_ref` (the token's own channel if `channel` is absent)."""
    if channel is None and "channel" not in reader.identity.roles:
        raise InvalidRequest("external_ref needs channel (the channel identity that placed the order)")
    order_id = get_order_by_external_ref(state, channel or reader.identity.id, external_ref)
    meta = None if order_id is None else get_order_meta(node.store, order_id)
    if order_id is None or meta is None or not reader.can_see(meta.orgs):
        return []
    summary = summarize(node.store, state, order_id)
    return [] if summary is None else [summary]


@router.get("/orders/{order_id}", response_model=Order, responses={404: {"model": ErrorBody}}, summary="One order")
async def get_order(order_id: str, state: StateDep, reader: Reader) -> Any:
    """The order with its `status`, `history` of transitions and `fulfilments`."""
    order = queries.get_order(state, order_id)
    if order is None or not reader.can_see({order["org"], *(f["org"] for f in order["fulfilments"] if f)}):
        raise NotFound(f"no order {order_id!r}")
    return order


@router.post(
    "/orders",
    response_model=WriteResult,
    responses={202: {"model": WriteResult}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Place an order as the token's channel (signed by the node); a re-sent external_ref is a duplicate",
)
async def create_order(
    node: NodeDep,
    writer: Writer,
    body: Payload,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    return await submit_as(
        node,
        writer,
        "order.create",
        body,
        response,
        idempotency_key,
        wait,
        lambda result: queries.get_order(StateView(node.store), result["order_id"]),
    )


@router.post(
    "/orders/{order_id}/{action}",
    response_model=WriteResult,
    responses={202: {"model": WriteResult}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Act on an order: cancel, approve or reject a held order, allocate, complete, pay, refund, return",
)
async def act_on_order(
    node: NodeDep,
    writer: Writer,
    order_id: str,
    action: OrderAction,
    response: Response,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    payload = {**(body or {}), "order_id": order_id}
    return await submit_as(
        node,
        writer,
        ORDER_ACTIONS[action],
        payload,
        response,
        idempotency_key,
        wait,
        lambda result: queries.get_order(StateView(node.store), order_id),
    )


@router.post(
    "/fulfilments/{fulfilment_id}/{action}",
    response_model=WriteResult,
    responses={202: {"model": WriteResult}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Act on a fulfilment: pick, ship (with carrier and tracking), deliver, decline",
)
async def act_on_fulfilment(
    node: NodeDep,
    writer: Writer,
    fulfilment_id: str,
    action: FulfilmentAction,
    response: Response,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    payload = {**(body or {}), "fulfilment_id": fulfilment_id}
    return await submit_as(
        node,
        writer,
        FULFILMENT_ACTIONS[action],
        payload,
        response,
        idempotency_key,
        wait,
        lambda result: get_order_of_fulfilment(StateView(node.store), fulfilment_id),
    )


def get_order_of_fulfilment(state: StateView, fulfilment_id: str) -> dict[str, Any] | None:
    record = get_fulfilment(state, fulfilment_id)
    return None if record is None else queries.get_order(state, record["order_id"])
