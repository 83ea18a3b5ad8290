"""Benchmark: the analytics routes on a ledger of 20,000 orders.

The store is filled directly with orders and their fulfilments (two locations
of two organisations, some orders split, cancelled, intercepted, shipped and
delivered), which takes far less time than committing them through blocks;
the analytics totals are then computed by the code a node runs after state
sync (`node.reindex`), from the same contribution of each order the executor
adds at commit. Each route is called as the API calls it, for an operator and
for a store; the figures are the median and worst of `CALLS` calls. The totals
must agree with a count made here from the orders as filled.
Size: `OMS_BENCH_ANALYTICS_ORDERS` (default 20000).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ledger.encoding import encode
from ledger.genesis import Identity
from ledger.store import STATE_PREFIX, Store
from node.api import analytics
from node.reindex import mark_rebuild, rebuild_derived
from node.tokens import Principal

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_BENCH_ANALYTICS_ORDERS", "20000"))
CALLS = 20
LOCATIONS = {"WH-1": "org-0", "ST-2": "org-1"}
SKUS = [f"SKU-{n:03d}" for n in range(200)]
START_MS = 1_700_000_000_000


def make_order(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Order `i` and its fulfilments: every fifth split over both locations, every thirteenth cancelled, every
    seventeenth intercepted on the way, the rest shipped and, most of them, delivered."""
    order_id = f"SO{i:010d}"
    created = START_MS + i * 60_000
    lines = [
        {"sku": SKUS[(i + n) % len(SKUS)], "qty": 1 + n, "cancelled": 0, "gross": 1999 * (1 + n)} for n in range(2)
    ]
    history = [{"from": None, "to": "created", "time_ms": created, "reason": ""}]
    status = "delivered"
    if i % 17 == 0:
        history.append({"from": "released", "to": "intercepted", "time_ms": created + 1_000, "reason": "address"})
    if i % 13 == 0:
        status = "cancelled"
        history.append({"from": "created", "to": "cancelled", "time_ms": created + 2_000, "reason": "changed mind"})
        lines = [{**line, "cancelled": line["qty"]} for line in lines]
    places = list(LOCATIONS) if i % 5 == 0 else [list(LOCATIONS)[i % 2]]
    fulfilments = []
    for n, location in enumerate(places):
        events = [{"status": "allocated", "time_ms": created}]
        if status != "cancelled":
            events.append({"status": "shipped", "time_ms": created + 3_600_000 + (i % 97) * 60_000})
            if i % 3:
                events.append({"status": "delivered", "time_ms": created + 86_400_000 + (i % 89) * 600_000})
        fulfilments.append(
            {
                "fulfilment_id": f"{order_id}-{n + 1}",
                "order_id": order_id,
                "location": location,
                "org": LOCATIONS[location],
                "status": "cancelled" if status == "cancelled" else events[-1]["status"],
                "lines": [{"line": n, "sku": lines[n]["sku"], "qty": lines[n]["qty"]}]
                if len(places) > 1
                else [{"line": m, "sku": line["sku"], "qty": line["qty"]} for m, line in enumerate(lines)],
                "events": events,
            }
        )
    order = {
        "order_id": order_id,
        "channel": f"channel-{i % 3 + 1}",
        "org": "org-0",
        "currency": "EUR",
        "status": status,
        "total": sum(line["gross"] for line in lines),
        "created_ms": created,
        "lines": lines,
        "history": history,
        "fulfilments": [f["fulfilment_id"] for f in fulfilments],
        "returns": [],
        "cancellations": [],
        "edits": [],
        "payment": {"events": []},
    }
    return order, fulfilments


def fill(store: Store) -> dict[str, int]:
    """`ORDERS` orders with their fulfilments in the state; what a count of them finds."""
    db = store.raw_db()
    batch = db.write_batch()
    counted = {"orders": 0, "split": 0, "cancelled": 0, "intercepted": 0, "org-1 orders": 0}
    for i in range(ORDERS):
        order, fulfilments = make_order(i)
        batch.put(STATE_PREFIX + f"order/{order['order_id']}".encode(), encode(order))
        for fulfilment in fulfilments:
            batch.put(STATE_PREFIX + f"fulfilment/{fulfilment['fulfilment_id']}".encode(), encode(fulfilment))
        counted["orders"] += 1
        counted["split"] += order["status"] != "cancelled" and len(fulfilments) > 1
        counted["cancelled"] += order["status"] == "cancelled"
        counted["intercepted"] += any(step["to"] == "intercepted" for step in order["history"])
        counted["org-1 orders"] += any(f["org"] == "org-1" for f in fulfilments)
        if i % 5_000 == 4_999:
            batch.write()
            batch = db.write_batch()
    batch.write()
    return counted


def call(route: Any, **params: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    answer = asyncio.run(route(**params))
    return answer, (time.perf_counter() - started) * 1000


def test_analytics_routes_on_twenty_thousand_orders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "db")
    try:
        counted = fill(store)
        mark_rebuild(store)
        report = rebuild_derived(store)
        assert report.orders == ORDERS and not report.skipped
        node = SimpleNamespace(store=store)
        operator = Principal("t1", Identity("operator-1", "org-0", b"", frozenset({"operator"})), frozenset())
        store_token = Principal("t2", Identity("store-2", "org-1", b"", frozenset({"store"})), frozenset())
        routes = {
            "sales by sku": (analytics.get_sales, {"by": "sku"}),
            "sales by day": (analytics.get_sales, {"by": "day"}),
            "sales by channel": (analytics.get_sales, {"by": "channel"}),
            "sales by location": (analytics.get_sales, {"by": "location"}),
            "times": (analytics.get_times, {}),
            "outcomes": (analytics.get_outcomes, {}),
            "allocation": (analytics.get_allocation, {}),
            "sales by sku, csv": (analytics.get_sales, {"by": "sku", "format": "csv"}),
        }
        figures = []
        for who, reader in (("operator", operator), ("store", store_token)):
            for name, (route, params) in routes.items():
                params = {"format": "json", **params}
                times = [call(route, node=node, reader=reader, **params)[1] for _ in range(CALLS)]
                figures.append(
                    f"{who:8} {name:18} median {statistics.median(times):6.2f} ms, worst {max(times):6.2f} ms"
                )

        (allocation,) = call(analytics.get_allocation, node=node, reader=operator, format="json")[0]["rows"]
        assert allocation["orders"] == counted["orders"]
        assert allocation["split_orders"] == counted["split"]
        outcomes = call(analytics.get_outcomes, node=node, reader=operator, format="json")[0]["rows"]
        by_kind = {row["outcome"]: row["orders"] for row in outcomes}
        assert by_kind == {"cancelled": counted["cancelled"], "intercepted": counted["intercepted"]}
        (seen,) = call(analytics.get_allocation, node=node, reader=store_token, format="json")[0]["rows"]
        assert seen["orders"] == counted["org-1 orders"]
        with capsys.disabled():
            print(f"\nanalytics on {ORDERS} orders (totals rebuilt in {report.seconds:.1f} s):")
            for line in figures:
                print("  " + line)
    finally:
        store.close()
