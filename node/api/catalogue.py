"""The catalogue (SKUs) and the distribution points (locations), as lists with cursors and one by one.

Both are shared by the whole network (every organisation's orders are priced
from the one catalogue, and allocation and transfers may name any location),
so any token with `catalogue:read` reads all of them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from contracts import keys
from contracts.catalogue import get_location, get_sku
from contracts.records import LocationType
from ledger.encoding import decode
from ledger.state import StateView
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, Location, Page, Sku
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["catalogue"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


def list_records(node: Node, prefix: str, limit: int, cursor: str | None, wanted: dict[str, Any]) -> Page[Any]:
    """A page of the records under `prefix` whose fields have the `wanted` values (None: any)."""
    entries = node.store.scan_state_after(prefix.encode(), decode_cursor(cursor))

    def render(raw: bytes) -> dict[str, Any] | None:
        record = decode(raw)
        matches = all(value is None or record[field] == value for field, value in wanted.items())
        return record if matches else None

    items, next_cursor = collect(entries, limit, render)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/skus", response_model=Page[Sku], summary="The catalogue: SKUs by id")
async def list_skus(
    node: NodeDep,
    reader: Reader,
    active: bool | None = None,
    virtual: bool | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    return list_records(node, keys.sku_key(""), limit, cursor, {"active": active, "virtual": virtual})


@router.get("/skus/{sku}", response_model=Sku, responses={404: {"model": ErrorBody}}, summary="One SKU")
async def get_one_sku(state: StateDep, reader: Reader, sku: str) -> Any:
    record = get_sku(state, sku)
    if record is None:
        raise NotFound(f"no SKU {sku!r}")
    return record


@router.get("/locations", response_model=Page[Location], summary="Stores and warehouses by id")
async def list_locations(
    node: NodeDep,
    reader: Reader,
    org: str | None = None,
    kind: Annotated[LocationType | None, Query(alias="type")] = None,
    region: str | None = None,
    active: bool | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    wanted = {"org": org, "type": kind, "region": region, "active": active}
    return list_records(node, keys.location_key(""), limit, cursor, wanted)


@router.get(
    "/locations/{location}", response_model=Location, responses={404: {"model": ErrorBody}}, summary="One location"
)
async def get_one_location(state: StateDep, reader: Reader, location: str) -> Any:
    record = get_location(state, location)
    if record is None:
        raise NotFound(f"no location {location!r}")
    return record
