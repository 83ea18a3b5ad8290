"""A recount of the analytics routes from raw orders, and the check that the routes agree with it.

`recount` counts sales, times to ship and deliver, outcomes and allocation
itself from every order a reader sees (each with its fulfilments, as
`GET /v1/orders/{id}` shows it) and the returns of those orders, with none of
`node.analytics`' bookkeeping; `check_routes` asks the routes (through any
`Answer`: the HTTP API of a node, or the route functions called in-process)
and compares. The end-to-end test recounts the demo through a node's API,
the benchmark a ledger of 20,000 orders from its LevelDB state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from node.analytics import BOUNDS_MS
from node.finance import format_day

GONE = ("declined", "cancelled")
"""Fulfilment statuses that serve nothing."""

Answer = Callable[[str, dict[str, Any]], list[dict[str, Any]]]
"""The rows a route (`sales`, `times`, ...) answers with the given query parameters."""


class Recount(TypedDict):
    """What the routes should answer, counted from the orders."""

    orders: int
    sales: dict[str, Counter[tuple[str, ...]]]
    """Per `by`: (key..., counter name) -> count."""
    times: dict[str, dict[str, list[int]]]
    """Per `ship`/`deliver`: per location, the times from order to first shipping (delivery), in ms."""
    outcomes: Counter[tuple[str, str]]
    allocation: Counter[str]


def bucket_bound(elapsed_ms: int) -> int:
    """The upper bound of the bucket of a time, counted afresh."""
    return next((bound for bound in BOUNDS_MS if bound >= elapsed_ms), BOUNDS_MS[-1])


def nearest_rank(values: list[int], share: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[-(-share * len(ordered) // 100) - 1]


def count_sales(sales: dict[str, Counter[tuple[str, ...]]], order: dict[str, Any]) -> None:
    units = sum(line["qty"] for line in order["lines"])
    cancelled = sum(line["cancelled"] for line in order["lines"])
    for by, value in (("channel", order["channel"]), ("day", format_day(order["created_ms"]))):
        key = (value, order["currency"])
        sales[by][(*key, "orders")] += 1
        sales[by][(*key, "units")] += units
        sales[by][(*key, "cancelled_units")] += cancelled
        sales[by][(*key, "amount")] += order["total"]
    for sku in {line["sku"] for line in order["lines"]}:
        sales["sku"][(sku, order["currency"], "orders")] += 1
    for line in order["lines"]:
        sales["sku"][(line["sku"], order["currency"], "units")] += line["qty"]
        sales["sku"][(line["sku"], order["currency"], "cancelled_units")] += line["cancelled"]
        sales["sku"][(line["sku"], order["currency"], "amount")] += line["gross"]


def recount(orders: Iterable[dict[str, Any]], read_return: Callable[[str], dict[str, Any]]) -> Recount:
    """What the analytics routes should answer for a reader of `orders` (with their fulfilments)."""
    counted = Recount(
        orders=0,
        sales={by: Counter() for by in ("channel", "day", "sku", "location")},
        times={"ship": {}, "deliver": {}},
        outcomes=Counter(),
        allocation=Counter(),
    )
    sales, times, allocation = counted["sales"], counted["times"], counted["allocation"]
    for order in orders:
        counted["orders"] += 1
        count_sales(sales, order)
        locations = set()
        for fulfilment in order["fulfilments"]:
            if fulfilment["status"] in GONE:
                continue
            locations.add(fulfilment["location"])
            served = sum(line["qty"] for line in fulfilment["lines"])
            sales["location"][(fulfilment["location"], "fulfilments")] += 1
            sales["location"][(fulfilment["location"], "units")] += served
            allocation["filled_units"] += served
            for table, status in (("ship", "shipped"), ("deliver", "delivered")):
                when = [event["time_ms"] for event in fulfilment["events"] if event["status"] == status]
                if when:
                    times[table].setdefault(fulfilment["location"], []).append(when[0] - order["created_ms"])
        allocation["orders"] += 1
        allocation["units"] += sum(line["qty"] - line["cancelled"] for line in order["lines"])
        allocation["fulfilled_orders"] += bool(locations)
        allocation["split_orders"] += len(locations) > 1
        if order["status"] == "cancelled":
            counted["outcomes"]["cancelled", [s for s in order["history"] if s["to"] == "cancelled"][-1]["reason"]] += 1
        for reason in {s["reason"] for s in order["history"] if s["to"] == "intercepted"}:
            counted["outcomes"]["intercepted", reason] += 1
        returns = [read_return(return_id) for return_id in order["returns"]]
        for reason in {r["reason"] for r in returns if r["status"] != "cancelled"}:
            counted["outcomes"]["returned", reason] += 1
    return counted


def check_routes(answer: Answer, counted: Recount) -> None:
    """Every route but `stock` answers what the recount found."""
    assert counted["orders"] > 0
    for by, expected in counted["sales"].items():
        got: Counter[tuple[str, ...]] = Counter()
        for row in answer("sales", {"by": by}):
            key = (row["location"],) if by == "location" else (row[by], row["currency"])
            for field, value in row.items():
                if isinstance(value, int) and value:
                    got[(*key, field)] += value
        assert got == +expected, by
    rows = answer("times", {})
    for table, done in (("ship", "shipped"), ("deliver", "delivered")):
        expected_times = {
            location: (len(values), *(bucket_bound(nearest_rank(values, share) or 0) for share in (50, 95)))
            for location, values in counted["times"][table].items()
        }
        got_times = {
            row["location"]: (row[done], row[f"{table}_p50_ms"], row[f"{table}_p95_ms"]) for row in rows if row[done]
        }
        assert got_times == expected_times, table
    outcomes = answer("outcomes", {})
    assert {(row["outcome"], row["reason"]): row["orders"] for row in outcomes} == dict(counted["outcomes"])
    assert all(row["rate"] == round(row["orders"] / counted["orders"], 4) for row in outcomes)
    (allocation,) = answer("allocation", {})
    assert {field: allocation[field] for field in counted["allocation"]} == dict(counted["allocation"])
    assert allocation["fill_rate"] == round(allocation["filled_units"] / allocation["units"], 4)
