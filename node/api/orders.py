"""Orders: status, history and fulfilments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts import queries
from ledger.state import StateView
from node.api.deps import authorize, get_state
from node.api.errors import NotFound
from node.api.models import ErrorBody, Order
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["orders"])

StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize("orders:read"))]


@router.get("/orders/{order_id}", response_model=Order, responses={404: {"model": ErrorBody}}, summary="One order")
async def get_order(order_id: str, state: StateDep, reader: Reader) -> Any:
    """The order with its `status`, `history` of transitions and `fulfilments`."""
    order = queries.get_order(state, order_id)
    if order is None or not reader.can_see({order["org"], *(f["org"] for f in order["fulfilments"] if f)}):
        raise NotFound(f"no order {order_id!r}")
    return order
