"""Returns: listed, read, requested, received at a location, cancelled.

A return belongs to everyone its order belongs to (`node.visibility`). Writes
are txs the node signs for the token's identity: a channel requests and
cancels returns of its own orders, a store receives the goods at its own
organisation's locations (of the organisation that shipped them); each answers
the return as it then is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts import keys, queries
from contracts.records import ReturnStatus
from ledger.encoding import decode
from ledger.state import StateView
from node.api.actions import Action, add_actions
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, Page, Return
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.node import Node
from node.tokens import Principal
from node.visibility import get_order_orgs, get_return_orgs

router = APIRouter(prefix="/v1", tags=["returns"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


@router.get("/returns", response_model=Page[Return], summary="Returns by id (all, or of one order)")
async def list_returns(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    order_id: str | None = None,
    status: ReturnStatus | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    """A store's or channel's token lists the returns of its organisation's orders."""
    prefix = keys.return_key("" if order_id is None else f"{order_id}-R").encode()
    entries = node.store.scan_state_after(prefix, decode_cursor(cursor))

    def render(raw: bytes) -> dict[str, Any] | None:
        record = decode(raw)
        if status is not None and record["status"] != status:
            return None
        if not reader.can_see(get_order_orgs(state.get, record["order_id"]) or []):
            return None
        return queries.to_json(record)

    items, next_cursor = collect(entries, limit, render)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/returns/{return_id}", response_model=Return, responses={404: {"model": ErrorBody}}, summary="One return")
async def get_return(return_id: str, state: StateDep, reader: Reader) -> Any:
    record = queries.get_return(state, return_id)
    if record is None or not reader.can_see(get_return_orgs(state.get, return_id) or []):
        raise NotFound(f"no return {return_id!r}")
    return record


def show_return(state: StateView, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    return queries.get_return(state, payload.get("return_id") or result["return_id"])


RETURN_ACTIONS = (
    Action(
        path="/returns",
        kind="return.request",
        summary="Request a return of delivered goods (optionally in exchange for other lines)",
        resource=Return,
        show=show_return,
        owner=("order_id", get_order_orgs),
    ),
    Action(
        path="/returns/{return_id}/receive",
        kind="return.receive",
        summary="The goods arrived at a location: back in stock (or damaged), credit notes issued",
        resource=Return,
        show=show_return,
        owner=("return_id", get_return_orgs),
    ),
    Action(
        path="/returns/{return_id}/cancel",
        kind="return.cancel",
        summary="The customer will not send (the rest of) the goods",
        resource=Return,
        show=show_return,
        owner=("return_id", get_return_orgs),
    ),
)
"""`POST /v1/returns` and `/v1/returns/{return_id}/<action>`."""

add_actions(router, RETURN_ACTIONS)
