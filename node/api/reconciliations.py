"""Reconciliation routes: a WMS's or ERP's stock snapshot against the ledger, and a day's money.

`POST /v1/reconciliations/stock` takes the snapshot as JSON (`location`,
`as_of`, `lines` [{`sku`, `qty`}], `full`) or as CSV (a header row naming
`sku` and `qty` or `quantity`; `location` and `as_of` as query parameters).
`as_of` is milliseconds since the epoch or an ISO 8601 time (UTC unless it
says otherwise). `GET /v1/reconciliations/finance?day=YYYY-MM-DD` answers the
day's amounts per organisation and currency and, a page at a time, the orders
whose money and documents disagree. Limits: `node.reconciliation`
(`MAX_SNAPSHOT_SKUS`, `MAX_SINCE`) and `node.api.pages.MAX_SCAN` orders
checked per finance page.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.state import StateView
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import InvalidRequest, NotFound, describe_validation, list_problems
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, FinanceReconciliation, StockReconciliation
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.api.params import to_ms
from node.finance import DAY_MS, read_day_totals, scan_day_orders
from node.node import Node
from node.reconciliation import MAX_SNAPSHOT_SKUS, Snapshot, check_order_money, reconcile_stock
from node.tokens import Principal
from node.visibility import get_location_org, get_order_orgs

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliations"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
StockReader = Annotated[Principal, Depends(authorize_route)]
FinanceReader = Annotated[Principal, Depends(authorize_route)]

AsOf = int | datetime
"""Milliseconds since the epoch, or an ISO 8601 time."""


class SnapshotLine(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=0)


class StockSnapshot(BaseModel):
    """A location's stock as a WMS or ERP saw it."""

    model_config = ConfigDict(extra="forbid")

    location: str
    as_of: AsOf = Field(description="ms since the epoch, or ISO 8601")
    lines: list[SnapshotLine] = Field(max_length=MAX_SNAPSHOT_SKUS)
    full: bool = Field(default=True, description="SKUs left out were held at 0 (false: compare only these)")


def parse_csv(text: str) -> list[SnapshotLine]:
    """Lines of a CSV snapshot: a header naming `sku` and `qty` (or `quantity`), then one row per SKU."""
    rows = csv.DictReader(io.StringIO(text))
    fields = {name.strip().lower(): name for name in rows.fieldnames or []}
    quantity = fields.get("qty") or fields.get("quantity")
    if "sku" not in fields or quantity is None:
        raise InvalidRequest("the CSV header must name sku and qty (or quantity)")
    lines: list[SnapshotLine] = []
    for number, row in enumerate(rows, 2):
        if len(lines) == MAX_SNAPSHOT_SKUS:
            raise InvalidRequest(f"more than {MAX_SNAPSHOT_SKUS} SKUs in one snapshot")
        value = (row[quantity] or "").strip()
        if not value.isdigit():
            raise InvalidRequest(f"line {number}: quantity {value!r} is not a whole number")
        try:
            lines.append(SnapshotLine(sku=(row[fields["sku"]] or "").strip(), qty=int(value)))
        except ValidationError as exc:
            raise InvalidRequest(f"line {number}: {describe_validation(exc.errors())}") from exc
    return lines


async def read_snapshot(request: Request, location: str | None, as_of: str | None, full: bool) -> StockSnapshot:
    """The snapshot in the request: CSV (location and as_of from the query) or JSON."""
    raw = await request.body()
    try:
        if request.headers.get("content-type", "").startswith("text/csv"):
            if location is None or as_of is None:
                raise InvalidRequest("a CSV snapshot needs the location and as_of query parameters", at="query")
            lines = parse_csv(raw.decode("utf-8-sig"))
            when: AsOf = int(as_of) if as_of.isdigit() else datetime.fromisoformat(as_of)
            return StockSnapshot(location=location, as_of=when, lines=lines, full=full)
        return StockSnapshot.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation(exc.errors()), fields=list_problems(exc.errors(), ["body"])) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest(f"the snapshot does not read as JSON or CSV: {exc}") from exc


@router.post(
    "/stock",
    response_model=StockReconciliation,
    responses={404: {"model": ErrorBody}},
    summary="Compare a WMS or ERP stock snapshot of a location with the ledger's stock at the snapshot's time",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/StockSnapshot"}},
                "text/csv": {"schema": {"type": "string", "example": "sku,qty\nTEE-M,12\n"}},
            }
        }
    },
)
async def reconcile_stock_snapshot(
    request: Request,
    state: StateDep,
    reader: StockReader,
    location: Annotated[str | None, Query(description="for a CSV snapshot: its location")] = None,
    as_of: Annotated[str | None, Query(description="for a CSV snapshot: ms since the epoch or ISO 8601")] = None,
    full: Annotated[bool, Query(description="for a CSV snapshot: SKUs left out were held at 0")] = True,
) -> Any:
    """Every SKU whose count differs from the ledger's on hand (sellable) at `as_of`, with the journal entries
    since; at most `MAX_SNAPSHOT_SKUS` SKUs and `MAX_SINCE` entries since per SKU."""
    snapshot = await read_snapshot(request, location, as_of, full)
    if not reader.can_see([get_location_org(state.get, snapshot.location) or ""]):
        raise NotFound(f"no location {snapshot.location!r}")
    counts: dict[str, int] = {}
    for line in snapshot.lines:
        if line.sku in counts:
            raise InvalidRequest(f"SKU {line.sku} is in the snapshot twice")
        counts[line.sku] = line.qty
    compared = Snapshot(snapshot.location, to_ms(snapshot.as_of), counts, snapshot.full)
    # Up to 1,000 SKUs and their journals: read on a worker thread, so the event loop keeps answering meanwhile.
    return await asyncio.to_thread(reconcile_stock, state, compared)


@router.get(
    "/finance",
    response_model=FinanceReconciliation,
    summary="A day's captured, invoiced, credited and refunded amounts per organisation, and orders that disagree",
)
async def reconcile_finance(
    node: NodeDep,
    state: StateDep,
    reader: FinanceReader,
    day: Annotated[date, Query(description="YYYY-MM-DD (UTC days of block time)")],
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    """The day's amounts (a store's or channel's token: its organisation's), and a page of the orders whose
    money or documents changed that day where paid and documented amounts differ at the end of the day. A
    page checks at most `MAX_SCAN` orders; follow `next_cursor` until it is null."""
    name = day.isoformat()
    until_ms = to_ms(datetime(day.year, day.month, day.day)) + DAY_MS
    totals = [row for row in read_day_totals(node.store, name) if reader.can_see([row["org"]])]

    def check(order_id: str) -> dict[str, Any] | None:
        if not reader.can_see(get_order_orgs(state.get, order_id) or []):
            return None
        return check_order_money(state, order_id, until_ms)

    flagged, next_cursor = collect(scan_day_orders(node.store, name, decode_cursor(cursor)), limit, check)
    return {"day": name, "organisations": totals, "flagged": flagged, "next_cursor": next_cursor}
