"""Stock per location and SKU, stock as of a height, the stock journal it is the sum of, lots, and writes.

The lists walk the state keys in order (`stock/<location>/<sku>`,
`journal/<location>/<sku>/<seq>`), which are themselves an index: a page
starts at its cursor's key. A token that reads one organisation walks only
its organisation's locations. Writes (receipts, adjustments, transfers and
their acceptance or refusal, counts and their approval, safety stock:
`STOCK_ACTIONS`) are txs the node signs for the token's identity.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from contracts import keys, queries
from contracts.inventory import compute_available, get_stock
from contracts.records import JournalKind, Stock
from ledger.encoding import MAX_INT, decode
from ledger.state import StateView
from node.api.actions import Action, add_actions
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import CountReport, ErrorBody, JournalEntry, Page, StockAt, StockRow, Transfer
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.node import Node
from node.tokens import Principal
from node.visibility import compute_transfer_orgs, get_location_org, get_transfer_orgs

router = APIRouter(prefix="/v1", tags=["inventory"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


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


def render_stock(record: Stock) -> dict[str, Any]:
    return {
        "location": record["location"],
        "sku": record["sku"],
        "on_hand": record["on_hand"],
        "reserved": record["reserved"],
        "available": compute_available(record),
        "damaged": record["damaged"],
        "safety": record["safety"],
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
    kind: JournalKind | None = None,
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


@router.get(
    "/lots/{lot}",
    response_model=Page[JournalEntry],
    summary="Trace a lot: every journal entry that moved it (receipt, transfers, shipments, returns)",
)
async def trace_lot(
    node: NodeDep, state: StateDep, reader: Reader, lot: str, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> Any:
    """Entries in (location, SKU, sequence) order; a page reads at most `MAX_SCAN` journal entries, so a page
    may be short and still have a `next_cursor`."""
    prefixes = get_location_prefixes(state, reader, None, keys.journal_prefix)
    entries = chain.from_iterable(node.store.scan_state_after(prefix, decode_cursor(cursor)) for prefix in prefixes)

    def render(raw: bytes) -> dict[str, Any] | None:
        entry = decode(raw)
        return queries.to_json(entry) if entry["lot"] == lot else None

    items, next_cursor = collect(entries, limit, render)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/transfers/{transfer_id}",
    response_model=Transfer,
    responses={404: {"model": ErrorBody}},
    summary="One transfer between locations: its lines (with lots) and status",
)
async def get_transfer(state: StateDep, reader: Reader, transfer_id: str) -> Any:
    record = state.get(keys.transfer_key(transfer_id))
    if record is None or not reader.can_see(compute_transfer_orgs(state.get, record)):
        raise NotFound(f"no transfer {transfer_id!r}")
    return queries.to_json(record)


def show_transfer(state: StateView, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    record = state.get(keys.transfer_key(result["transfer_id"]))
    return None if record is None else queries.to_json(record)


def show_count(state: StateView, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    report = state.get(keys.count_key(payload["location"], result["count"]))
    return None if report is None else queries.to_json(report)


def show_stock(state: StateView, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    return render_stock(get_stock(state, payload["location"], payload["sku"]))


def stock_action(path: str, kind: str, summary: str, **shown: Any) -> Action:
    """`POST /v1/inventory/<path>` sending `kind` (scope `inventory:write`)."""
    return Action(path=f"/inventory/{path}", kind=kind, summary=summary, **shown)


STOCK_ACTIONS = (
    stock_action("receipts", "stock.receive", "Goods in at a location (by lot, against a document)"),
    stock_action("adjustments", "stock.adjust", "Correct on hand or damaged stock, with a reason"),
    stock_action(
        "transfers",
        "stock.transfer",
        "Send goods to another location: out now, in once it accepts",
        resource=Transfer,
        show=show_transfer,
    ),
    stock_action(
        "transfers/{transfer_id}/accept",
        "stock.transfer.accept",
        "The receiving location takes a transfer in",
        resource=Transfer,
        show=show_transfer,
        owner=("transfer_id", get_transfer_orgs),
    ),
    stock_action(
        "transfers/{transfer_id}/refuse",
        "stock.transfer.refuse",
        "The receiving location refuses a transfer: the goods go back",
        resource=Transfer,
        show=show_transfer,
        owner=("transfer_id", get_transfer_orgs),
    ),
    stock_action(
        "transfers/{transfer_id}/recall",
        "stock.transfer.recall",
        "The sending location takes back a transfer to a location deactivated meanwhile",
        resource=Transfer,
        show=show_transfer,
        owner=("transfer_id", get_transfer_orgs),
    ),
    stock_action(
        "counts",
        "stock.count",
        "Report a physical count: the differences against the ledger (changes no stock)",
        resource=CountReport,
        show=show_count,
    ),
    stock_action(
        "counts/{count}/approve",
        "stock.count.approve",
        "Post a count's differences as adjustments with a reason (operators)",
        resource=CountReport,
        show=show_count,
    ),
    stock_action(
        "safety-stock",
        "stock.safety",
        "Set the units of a SKU at a location that allocation never reserves",
        resource=StockRow,
        show=show_stock,
    ),
)
"""`POST /v1/inventory/<action>`: each sends one tx kind, its payload the body (and the path's id)."""

add_actions(router, STOCK_ACTIONS)
