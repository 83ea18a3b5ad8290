"""Stock per location and SKU, stock as of a height, and the stock journal it is the sum of.

Both lists walk the state keys in order (`stock/<location>/<sku>`,
`journal/<location>/<sku>/<seq>`), which are themselves an index: a page
starts at its cursor's key. A token that reads one organisation walks only
its organisation's locations.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response

from contracts import keys, queries
from contracts.inventory import compute_available
from ledger.encoding import MAX_INT, decode
from ledger.state import StateView
from node.api.deps import authorize, get_node, get_state
from node.api.errors import NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, JournalEntry, Page, StockAt, StockRow, WriteResult
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.api.writes import IdempotencyKey, Wait, submit_as
from node.node import Node
from node.tokens import Principal
from node.visibility import get_location_org

router = APIRouter(prefix="/v1", tags=["inventory"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize("inventory:read"))]
Writer = Annotated[Principal, Depends(authorize("inventory:write"))]

STOCK_ACTIONS = {
    "receipts": "stock.receive",
    "adjustments": "stock.adjust",
    "transfers": "stock.transfer",
    "counts": "stock.count",
}
"""`POST /v1/inventory/{action}` -> the tx kind it sends (payload: the body)."""

StockAction = Literal["receipts", "adjustments", "transfers", "counts"]


def get_location_prefixes(
    state: StateView, reader: Principal, location: str | None, make_prefix: Callable[[str | None], str]
) -> list[bytes]:
    """The key prefixes a list walks: one location's, every location's, or those of the reader's organisation."""
    if location is not None:
        visible = reader.can_see([get_location_org(state.get, location) or ""])
        return [make_prefix(location).encode()] if visible else []
    if reader.sees_all:
        return [make_prefix(None).encode()]
    own = [record["location"] for _, record in state.scan("location/") if record["org"] == reader.org]
    return sorted(make_prefix(name).encode() for name in own)


def render_stock(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": record["location"],
        "sku": record["sku"],
        "on_hand": record["on_hand"],
        "reserved": record["reserved"],
        "available": compute_available(record),
        "damaged": record["damaged"],
        "lots": [{"lot": lot, "qty": qty} for lot, qty in record["lots"]],
    }


@router.get("/inventory", response_model=Page[StockRow], summary="On hand, reserved and available per location and SKU")
async def list_inventory(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    location: str | None = None,
    sku: str | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    after = decode_cursor(cursor)
    prefixes = get_location_prefixes(state, reader, location, keys.stock_prefix)
    entries = chain.from_iterable(node.store.scan_state_after(prefix, after) for prefix in prefixes)

    def render(raw: bytes) -> dict[str, Any] | None:
        record = decode(raw)
        return render_stock(record) if sku is None or record["sku"] == sku else None

    items, next_cursor = collect(entries, limit, render)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/inventory/{location}/{sku}",
    response_model=StockAt,
    responses={404: {"model": ErrorBody}},
    summary="Stock of one location and SKU as it was after a block (the sum of its journal up to it)",
)
async def get_stock_at(
    state: StateDep,
    node: NodeDep,
    reader: Reader,
    location: str,
    sku: str,
    height: Annotated[int | None, Query(ge=0, le=MAX_INT, description="a block height; now if absent")] = None,
) -> Any:
    if not reader.can_see([get_location_org(state.get, location) or ""]):
        raise NotFound(f"no location {location!r}")
    return queries.get_stock_at(state, location, sku, node.store.height if height is None else height)


@router.get(
    "/journal",
    response_model=Page[JournalEntry],
    summary="Stock journal entries (every change of stock, with its tx and height), by location, SKU and sequence",
)
async def list_journal(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    location: str | None = None,
    sku: str | None = None,
    kind: str | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    after = decode_cursor(cursor)
    prefixes = get_location_prefixes(state, reader, location, lambda loc: keys.journal_prefix(loc, sku))
    entries = chain.from_iterable(node.store.scan_state_after(prefix, after) for prefix in prefixes)

    def render(raw: bytes) -> dict[str, Any] | None:
        entry = decode(raw)
        if (sku is not None and entry["sku"] != sku) or (kind is not None and entry["kind"] != kind):
            return None
        return queries.to_json(entry)

    items, next_cursor = collect(entries, limit, render)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/inventory/{action}",
    response_model=WriteResult,
    responses={202: {"model": WriteResult}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Receive, adjust, transfer or count stock as the token's identity (signed by the node)",
)
async def move_stock(
    node: NodeDep,
    writer: Writer,
    action: StockAction,
    body: Annotated[dict[str, Any], Body()],
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    return await submit_as(node, writer, STOCK_ACTIONS[action], body, response, idempotency_key, wait)
