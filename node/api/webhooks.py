"""Webhook subscriptions of an organisation on this node, and their deliveries (`node.notify.webhooks`).

A token with `webhooks:write` makes and removes its organisation's
subscriptions and replays its deliveries; `webhooks:read` lists them. An
organisation sees only its own subscriptions: another's id answers 404, as
an unknown one does. Making one also needs `events:read`, since the
subscription receives what that scope reads. The subscription is kept by this
node and sent from it alone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from node.api.deps import authorize_route, get_node
from node.api.errors import Forbidden
from node.api.limits import DEFAULT_PAGE
from node.api.models import (
    ErrorBody,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookIn,
    WebhookList,
    WebhookSubscription,
)
from node.api.pages import Limit
from node.node import Node
from node.notify.outbox import Delivery
from node.notify.subscriptions import Subscription
from node.tokens import Principal

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

NodeDep = Annotated[Node, Depends(get_node)]
Reader = Annotated[Principal, Depends(authorize_route)]
Writer = Annotated[Principal, Depends(authorize_route)]
Id = Annotated[str, Path(max_length=100)]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody, "description": "no such subscription or delivery of the token's organisation"},
}


def show_subscription(subscription: Subscription, with_secret: bool = False) -> WebhookSubscription:
    return WebhookSubscription(
        id=subscription["id"],
        url=subscription["url"],
        events=subscription["events"],
        org=subscription["org"],
        sees_all=subscription["sees_all"],
        created_ms=subscription["created_ms"],
        created_by=subscription["created_by"],
        secret=subscription["secret"] if with_secret else None,
    )


def show_delivery(delivery: Delivery) -> WebhookDelivery:
    return WebhookDelivery(
        id=delivery["id"],
        subscription=delivery["subscription"],
        cursor=str(delivery["cursor"]),
        type=delivery["type"],
        status=delivery["status"],
        attempts=delivery["attempts"],
        next_attempt_ms=delivery["due_ms"] if delivery["status"] == "pending" else None,
        created_ms=delivery["created_ms"],
        last_status=delivery["last_status"],
        last_error=delivery["last_error"],
        done_ms=delivery["done_ms"],
    )


@router.post(
    "",
    status_code=201,
    response_model=WebhookSubscription,
    responses=ERRORS,
    summary="Subscribe a receiver to events of the token's organisation (the answer holds the secret, once)",
)
async def create_webhook(node: NodeDep, writer: Writer, body: WebhookIn) -> Any:
    if "events:read" not in writer.scopes:
        raise Forbidden("a subscription receives the change feed: the token needs scope 'events:read' too")
    subscription = node.webhooks.subscribe(
        org=writer.org,
        sees_all=writer.sees_all,
        identity=writer.identity.id,
        url=body.url,
        events=body.events,
        secret=body.secret,
    )
    return show_subscription(subscription, with_secret=True)


@router.get("", response_model=WebhookList, responses=ERRORS, summary="The organisation's subscriptions on this node")
async def list_webhooks(node: NodeDep, reader: Reader) -> Any:
    return WebhookList(items=[show_subscription(s) for s in node.webhooks.list_subscriptions(reader.org)])


@router.get(
    "/deliveries",
    response_model=WebhookDeliveryList,
    responses=ERRORS,
    summary="Pending, dead and delivered deliveries of the organisation's subscriptions, newest first",
)
async def list_deliveries(
    node: NodeDep,
    reader: Reader,
    subscription: Annotated[str | None, Query(max_length=100, description="one subscription's only")] = None,
    failed: Annotated[bool, Query(description="only the dead ones and those retrying after a failure")] = False,
    limit: Limit = DEFAULT_PAGE,
) -> Any:
    found = node.webhooks.list_deliveries(reader.org, subscription, failed, limit)
    return WebhookDeliveryList(items=[show_delivery(d) for d in found])


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=WebhookDelivery,
    responses={**ERRORS, 409: {"model": ErrorBody, "description": "the delivery is pending already"}},
    summary="Send a dead (or delivered) delivery again, with the same id",
)
async def replay_delivery(node: NodeDep, writer: Writer, delivery_id: Id) -> Any:
    return show_delivery(node.webhooks.replay(writer.org, delivery_id))


@router.delete(
    "/{subscription_id}",
    response_model=WebhookSubscription,
    responses=ERRORS,
    summary="Remove a subscription with its pending deliveries",
)
async def delete_webhook(node: NodeDep, writer: Writer, subscription_id: Id) -> Any:
    return show_subscription(node.webhooks.unsubscribe(writer.org, subscription_id))
