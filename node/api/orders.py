"""Orders: lists by status, channel, location or date from the node's indexes, one order, its history, writes.

`GET /v1/orders` walks one index range (`node.indexes`): by `status`, else
`location`, else `channel`, else by creation time (or by last update when only
an updated range is given); the other filters are checked on each order. A
store's or channel's token lists its organisation's orders, operators and
auditors every order. Writes (placing one order or a bounded list of them,
acting on an order: `ORDER_ACTIONS`) are txs the node signs for the token's
identity (`node.api.writes`, `node.api.actions`); an order's `ship_to` and
`notes` are sealed to the channel's organisation before it is signed
(`node.personal`), and `GET /v1/orders/{order_id}/personal` opens them for a
token of an organisation that may read them with scope `personal:read`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts import keys, queries
from contracts.orders import get_order_by_external_ref
from contracts.records import OrderStatus
from ledger.encoding import MAX_INT
from ledger.personal import MAX_ADDRESS_LINE, MAX_ADDRESS_LINES, MAX_NOTES, SHIP_TO_TEXT
from ledger.state import StateView
from ledger.store import Store
from node.api.actions import WRITE_ERRORS, Action, add_actions
from node.api.bodies import TxBody, payload_model
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import InvalidRequest, NotFound
from node.api.limits import DEFAULT_PAGE, MAX_IMPORT
from node.api.models import ErrorBody, ImportItem, ImportResult, Order, OrderHistory, OrderSummary, Page, WriteResult
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.api.params import TimeMs
from node.api.writes import (
    IdempotencyKey,
    Wait,
    admit,
    derive_nonce,
    describe_tx,
    find_first_tx,
    recall_window,
    remember_request,
    sign_as,
    submit_as,
    wait_for_commit,
)
from node.indexes import ALL_SCOPE, OrderRange, get_order_meta, scan_orders
from node.node import Node
from node.personal import PersonalNotFound, read_personal, seal_for
from node.tokens import Principal
from node.visibility import get_order_orgs

router = APIRouter(prefix="/v1", tags=["orders"])


class ShipTo(BaseModel):
    """Where an order goes and whom to reach: sealed by the node before the order is signed, never in clear on
    the ledger."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=SHIP_TO_TEXT["name"])]
    address_lines: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=MAX_ADDRESS_LINE)]],
        Field(min_length=1, max_length=MAX_ADDRESS_LINES),
    ]
    city: Annotated[str, Field(min_length=1, max_length=SHIP_TO_TEXT["city"])]
    postcode: Annotated[str, Field(min_length=1, max_length=SHIP_TO_TEXT["postcode"])] | None = None
    region: Annotated[str, Field(min_length=1, max_length=SHIP_TO_TEXT["region"])] | None = None
    country: Annotated[str, Field(pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. NL")]
    phone: Annotated[str, Field(min_length=1, max_length=SHIP_TO_TEXT["phone"])] | None = None
    email: Annotated[str, Field(min_length=1, max_length=SHIP_TO_TEXT["email"])] | None = None


class Personal(BaseModel):
    """An order's ship-to and notes, opened with the reading organisation's key."""

    order_id: str
    ship_to: ShipTo | None
    notes: str | None
    commitment: str = Field(description="sha256 of the salted plaintext, as the ledger holds it")


if TYPE_CHECKING:
    NewOrder = TxBody
else:
    NewOrder = create_model(
        "OrderCreateBody",
        __base__=payload_model("order.create", without="personal"),
        ship_to=(ShipTo | None, Field(None, description="sealed to the channel's organisation by the node")),
        notes=(Annotated[str, Field(max_length=MAX_NOTES)] | None, Field(None, description="sealed as ship_to is")),
    )
    """The body of `POST /v1/orders`, and of each order of an import: the payload of `order.create`, with the
    `ship_to` and `notes` in clear that the node seals into its `personal`."""

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]
Writer = Annotated[Principal, Depends(authorize_route)]


@router.get(
    "/orders",
    response_model=Page[OrderSummary],
    summary="Orders by status, channel, location, created or updated time, oldest first; or by external_ref",
)
async def list_orders(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    status: OrderStatus | None = None,
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
        raise InvalidRequest("cursor belongs to a list with other filters", at="query.cursor")
    items, next_cursor = collect(scan_orders(node.store, query, after), limit, render)
    return Page(items=items, next_cursor=next_cursor)


def summarize(store: Store, state: StateView, order_id: str) -> dict[str, Any] | None:
    """An order as lists show it, from its record and what the indexes know of it."""
    order = state.get(keys.order_key(order_id))
    if order is None:
        return None
    meta = get_order_meta(store, state.get, order)
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
        raise InvalidRequest(
            "external_ref needs channel (the channel identity that placed the order)", at="query.channel"
        )
    order_id = get_order_by_external_ref(state, channel or reader.identity.id, external_ref)
    orgs = None if order_id is None else get_order_orgs(state.get, order_id)
    if order_id is None or orgs is None or not reader.can_see(orgs):
        return []
    summary = summarize(node.store, state, order_id)
    return [] if summary is None else [summary]


@router.get("/orders/{order_id}", response_model=Order, responses={404: {"model": ErrorBody}}, summary="One order")
async def get_order(order_id: str, state: StateDep, reader: Reader) -> Any:
    """The order with its `status`, `history` of transitions and `fulfilments`."""
    return require_visible_order(state, reader, order_id)


@router.get(
    "/orders/{order_id}/history",
    response_model=OrderHistory,
    responses={404: {"model": ErrorBody}},
    summary="Everything that happened to an order, each step with who, which tx, block and time",
)
async def get_order_history(order_id: str, state: StateDep, reader: Reader) -> Any:
    order = require_visible_order(state, reader, order_id)
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "history": order["history"],
        "fulfilments": [
            {key: f[key] for key in ("fulfilment_id", "location", "status", "events")} for f in order["fulfilments"]
        ],
        "payments": order["payment"]["events"],
        "cancellations": order["cancellations"],
        "edits": order["edits"],
        "returns": order["returns"],
    }


@router.get(
    "/orders/{order_id}/personal",
    response_model=Personal,
    responses={404: {"model": ErrorBody}, 410: {"model": ErrorBody}},
    summary="The ship-to and notes of an order, for a token of an organisation that may read them",
)
async def get_order_personal(order_id: str, node: NodeDep, state: StateDep, reader: Reader) -> Any:
    """Opened with this node's organisation key, only for a token of this node's organisation, and only while
    the ledger holds the order's data key wrapped to it (the channel's organisation, or one that fulfils the
    order); 404 otherwise (whatever the reason, so nothing is learnt), 410 once erased."""
    org = node.config.org
    if reader.org != org:
        raise PersonalNotFound(f"no personal data of order {order_id!r} that {reader.org} may read on this node")
    data, commitment = read_personal(state, order_id, org, node.encryption_key)
    return {"order_id": order_id, "ship_to": data["ship_to"], "notes": data["notes"], "commitment": commitment}


def require_visible_order(state: StateView, reader: Principal, order_id: str) -> dict[str, Any]:
    """The order as `GET /v1/orders/{order_id}` shows it, or 404 if absent or not the reader's to see."""
    order = queries.get_order(state, order_id)
    if order is None or not reader.can_see(get_order_orgs(state.get, order_id) or []):
        raise NotFound(f"no order {order_id!r}")
    return order


def show_order(state: StateView, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    """The order a tx acted on (named by the payload, or by the result of a new order)."""
    return queries.get_order(state, payload.get("order_id") or result["order_id"])


@router.post(
    "/orders",
    response_model=WriteResult[Order],
    responses=WRITE_ERRORS,
    summary="Place an order as the token's channel (signed by the node); a re-sent external_ref is a duplicate",
)
async def create_order(
    node: NodeDep,
    writer: Writer,
    body: NewOrder,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    request = None if idempotency_key is None else (writer.identity.id, idempotency_key)
    payload = seal_for(node.executor.get_membership(), writer.org, body.to_payload(), node.key, request)
    return await submit_as(
        node,
        writer,
        "order.create",
        payload,
        response,
        idempotency_key,
        wait,
        lambda result: show_order(StateView(node.store), payload, result),
    )


@router.post(
    "/orders/import",
    response_model=ImportResult,
    responses=WRITE_ERRORS,
    summary=f"Place up to {MAX_IMPORT} orders at once as the token's channel; one answer per order, in order",
)
async def import_orders(
    node: NodeDep,
    writer: Writer,
    body: Annotated[list[NewOrder], Body(max_length=MAX_IMPORT)],
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    """Each order is its own `order.create` tx: one refused or rejected does not hold back the others, and a
    re-sent `external_ref` answers the order it placed before (`duplicate`). With `Idempotency-Key` the
    same key and list make the same txs; with `wait=commit` the answer comes once all are committed."""
    identity = writer.identity.id
    item_keys = [None if idempotency_key is None else f"{idempotency_key}\x00{i}" for i in range(len(body))]
    membership = node.executor.get_membership()
    payloads = [
        seal_for(membership, writer.org, order.to_payload(), node.key, None if key is None else (identity, key))
        for order, key in zip(body, item_keys, strict=True)
    ]
    firsts = [
        None if key is None else find_first_tx(node, identity, key, "order.create", payload)
        for payload, key in zip(payloads, item_keys, strict=True)
    ]
    request = {"kind": "order.create", "import": payloads}
    valid_until = recall_window(node, writer, idempotency_key, request)
    txs = {
        index: sign_as(node, writer, "order.create", payloads[index], derive_nonce(identity, key), valid_until)
        for index, (key, first) in enumerate(zip(item_keys, firsts, strict=True))
        if first is None
    }
    if idempotency_key is not None:
        remember_request(node, writer, idempotency_key, request, [tx.id for tx in txs.values()], valid_until)
    refused = admit(node, list(txs.values()))
    tx_ids = [first or txs[index].id for index, first in enumerate(firsts)]
    await wait_for_commit(node, [tx_id for tx_id in tx_ids if tx_id not in refused], wait)
    items = []
    for index, (tx_id, payload) in enumerate(zip(tx_ids, payloads, strict=True)):
        error = refused.get(tx_id)
        if error is not None:
            items.append(
                ImportItem(
                    index=index,
                    external_ref=payload["external_ref"],
                    tx_id=tx_id.hex(),
                    status="refused",
                    reason=f"{error.code}: {error}",
                )
            )
            continue
        done = describe_tx(node, tx_id, lambda result: None)
        result = done.receipt.result if done.receipt is not None else {}
        items.append(
            ImportItem(
                index=index,
                external_ref=payload["external_ref"],
                tx_id=done.tx_id,
                status=done.status,
                reason=done.reason,
                order_id=result.get("order_id"),
                order_status=result.get("status"),
                duplicate=result.get("duplicate"),
            )
        )
    if any(item.status == "pending" for item in items):
        response.status_code = 202
    return ImportResult(items=items)


def order_action(verb: str, kind: str, summary: str) -> Action:
    """`POST /v1/orders/{order_id}/<verb>` sending `kind`; answers the order as it then is."""
    return Action(
        path=f"/orders/{{order_id}}/{verb}",
        kind=kind,
        summary=summary,
        resource=Order,
        show=show_order,
        owner=("order_id", get_order_orgs),
    )


ORDER_ACTIONS = (
    order_action("cancel", "order.cancel", "Cancel what has not left: all, or some units of some lines"),
    order_action("edit", "order.edit", "Change the lines or destination of an order held in review"),
    order_action("approve", "order.approve", "Let an order held in review through (operators)"),
    order_action("reject", "order.reject", "Refuse an order held in review: it is cancelled (operators)"),
    order_action("intercept", "order.intercept", "Hold a released order before (the rest of) it ships"),
    order_action("release", "order.release", "Let an intercepted order ship again (operators)"),
    order_action("allocate", "order.allocate", "Source the backordered lines again now"),
    order_action("complete", "order.complete", "Close a delivered or returned order whose money is settled"),
    order_action("authorize-payment", "payment.authorize", "Record a payment authorisation"),
    order_action(
        "pay",
        "payment.capture",
        "Record a captured payment; once what is due is captured the order is released",
    ),
    order_action("refund", "payment.refund", "Record a refund of a cancellation or a credit note"),
    order_action("request-return", "return.request", "Request a return of delivered goods (as `POST /v1/returns`)"),
)
"""`POST /v1/orders/{order_id}/<action>`: each sends one tx kind, its payload the body and `order_id`."""

add_actions(router, ORDER_ACTIONS)
