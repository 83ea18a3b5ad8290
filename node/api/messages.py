"""`GET /v1/orders/{order_id}/messages/{event}`: the customer message of an event, rendered from the order.

The node renders its template of the event and channel (`node.notify.messages`)
from the order as `GET /v1/orders/{order_id}` shows it, for whoever sends
customers their SMS and e-mails. The order must be one the token reads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from ledger.state import StateView
from node.api.deps import authorize_route, get_node, get_state
from node.api.models import ErrorBody, OrderMessage
from node.api.orders import require_visible_order
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["orders"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


@router.get(
    "/orders/{order_id}/messages/{event}",
    response_model=OrderMessage,
    responses={404: {"model": ErrorBody, "description": "no such order for the token, or no such template"}},
    summary="A customer message (SMS or e-mail) of an event, rendered from the order by the node's templates",
)
async def get_order_message(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    order_id: str,
    event: Annotated[str, Path(max_length=64, examples=["order.created", "fulfilment.shipped"])],
    channel: Annotated[Literal["sms", "email"], Query()] = "email",
) -> Any:
    order = require_visible_order(state, reader, order_id)
    message = node.messages.render(event, channel, order)
    return OrderMessage(order_id=order_id, event=event, channel=channel, subject=message.subject, text=message.text)
