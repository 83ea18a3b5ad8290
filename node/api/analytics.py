"""Analytics routes: sales, times to ship and deliver, outcomes, allocation and stock cover, from kept totals.

Each route reads one range of the totals `node.analytics` keeps in each
block's write batch, never the orders themselves, so it answers in the same
time however many orders the ledger holds. An operator's or auditor's token
reads the totals of every order; a store's or channel's token those of the
orders its organisation belongs to (the orders its lists show). Every route
answers `{"rows": [...]}` of flat rows, or with `?format=csv` the same rows
as CSV (a header row, then one line per row). Rates are shares between 0 and
1; times are milliseconds, a percentile being the upper bound of the bucket
that holds it (`node.analytics.BOUNDS_MS`, about 19% apart). The stock
route (turnover and days of cover) needs `inventory:read`, the others
`orders:read`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from contracts import keys
from ledger.state import StateView
from node.analytics import compute_percentile, read_table
from node.api.deps import authorize_route, get_node, get_state
from node.indexes import ALL_SCOPE
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]
StockReader = Annotated[Principal, Depends(authorize_route)]
Format = Annotated[Literal["json", "csv"], Query(description="json, or csv for a spreadsheet")]

Rows = list[dict[str, Any]]


def get_scope(reader: Principal) -> str:
    """The scope of totals `reader` reads."""
    return ALL_SCOPE if reader.sees_all else reader.org


def format_csv(rows: Rows) -> str:
    """`rows` as CSV: a header of every column any row has, in the order first seen."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def answer(rows: Rows, form: str) -> Any:
    if form == "csv":
        return Response(format_csv(rows), media_type="text/csv; charset=utf-8")
    return {"rows": rows}


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.get("/sales", summary="Orders, units and amounts by channel, location, SKU or day", responses=CSV_RESPONSE)
async def get_sales(
    node: NodeDep,
    reader: Reader,
    by: Annotated[Literal["channel", "location", "sku", "day"], Query(description="what to group by")],
    format: Format = "json",
) -> Any:
    """By channel, SKU or UTC day the order was placed: orders, units ordered, units cancelled and amount (the
    orders' totals, or the lines' gross for a SKU) per currency. By location: the fulfilments each serves and
    their units (declined and cancelled ones left out)."""
    rows: Rows = []
    for key, counters in read_table(node.store, get_scope(reader), by):
        if by == "location":
            rows.append({"location": key[0], "fulfilments": counters["fulfilments"], "units": counters.get("units", 0)})
        else:
            rows.append(
                {
                    by: key[0],
                    "currency": key[1],
                    "orders": counters.get("orders", 0),
                    "units": counters.get("units", 0),
                    "cancelled_units": counters.get("cancelled_units", 0),
                    "amount": counters.get("amount", 0),
                }
            )
    return answer(rows, format)


@router.get("/times", summary="Time from order to ship and to delivery (p50, p95) by location", responses=CSV_RESPONSE)
async def get_times(node: NodeDep, reader: Reader, format: Format = "json") -> Any:
    """Per location, how many of its fulfilments shipped and were delivered, and the 50th and 95th percentile
    of the time from their order's placing to their first shipping and to their delivery."""
    scope = get_scope(reader)
    tables = {table: dict(read_table(node.store, scope, table)) for table in ("ship", "deliver")}
    rows: Rows = []
    for key in sorted(tables["ship"].keys() | tables["deliver"].keys()):
        row: dict[str, Any] = {"location": key[0]}
        for table, done in (("ship", "shipped"), ("deliver", "delivered")):
            buckets = tables[table].get(key, {})
            row[done] = sum(buckets.values())
            row[f"{table}_p50_ms"] = compute_percentile(buckets, 50)
            row[f"{table}_p95_ms"] = compute_percentile(buckets, 95)
        rows.append(row)
    return answer(rows, format)


@router.get("/outcomes", summary="Cancellation, interception and return rates, with reasons", responses=CSV_RESPONSE)
async def get_outcomes(node: NodeDep, reader: Reader, format: Format = "json") -> Any:
    """Per outcome (`cancelled`: the order's status now; `intercepted`: ever; `returned`: a return not
    cancelled) and reason, the orders that came to it and their share of all orders."""
    table = read_table(node.store, get_scope(reader), "outcome")
    orders = sum(counters["orders"] for key, counters in table if key == ("orders", ""))
    rows = [
        {"outcome": kind, "reason": reason, "orders": counters["orders"], "rate": share(counters["orders"], orders)}
        for (kind, reason), counters in table
        if kind != "orders"
    ]
    return answer(rows, format)


@router.get("/allocation", summary="Fill rate and split rate of allocation", responses=CSV_RESPONSE)
async def get_allocation(node: NodeDep, reader: Reader, format: Format = "json") -> Any:
    """Fill rate: units placed in fulfilments (declined and cancelled ones left out) over units ordered and not
    cancelled. Split rate: orders served from more than one location over orders served from any."""
    table = dict(read_table(node.store, get_scope(reader), "allocation"))
    totals = table.get((), {})
    units, filled = totals.get("units", 0), totals.get("filled_units", 0)
    fulfilled, split = totals.get("fulfilled_orders", 0), totals.get("split_orders", 0)
    row = {
        "orders": totals.get("orders", 0),
        "units": units,
        "filled_units": filled,
        "fill_rate": share(filled, units),
        "fulfilled_orders": fulfilled,
        "split_orders": split,
        "split_rate": share(split, fulfilled),
    }
    return answer([row], format)


@router.get("/stock", summary="Stock turnover and days of cover per SKU and location", responses=CSV_RESPONSE)
async def get_stock(
    node: NodeDep,
    state: StateDep,
    reader: StockReader,
    days: Annotated[int, Query(ge=1, le=366, description="length of the window, in days")] = 30,
    until: Annotated[date | None, Query(description="last UTC day of the window (default: today)")] = None,
    format: Format = "json",
) -> Any:
    """Per location and SKU that shipped in the window of `days` UTC days ending `until`: units shipped, units
    on hand now, turnover (units shipped over units on hand) and days of cover (units on hand over the units
    shipped per day)."""
    last = until or datetime.now(UTC).date()
    first = (last - timedelta(days=days - 1)).isoformat()
    shipped: dict[tuple[str, str], int] = {}
    for (day, location, sku), counters in read_table(node.store, get_scope(reader), "shipped", (first, "", "")):
        if day <= last.isoformat():
            shipped[location, sku] = shipped.get((location, sku), 0) + counters["units"]
    rows: Rows = []
    for (location, sku), units in sorted(shipped.items()):
        stock = state.get(keys.stock_key(location, sku))
        on_hand = int(stock["on_hand"]) if stock else 0
        rows.append(
            {
                "location": location,
                "sku": sku,
                "shipped_units": units,
                "on_hand": on_hand,
                "turnover": share(units, on_hand),
                "days_of_cover": round(on_hand * days / units, 1),
            }
        )
    return answer(rows, format)
