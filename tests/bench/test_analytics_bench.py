"""Benchmark: the analytics routes on a ledger of 20,000 orders, recounted from the raw orders.

The ledger is built in-process through the node's own executor on a real
LevelDB store (`tests.helpers.order_ledger`: much faster than a devnet, and
the same code a node runs at commit, analytics totals included). A recount
from every order and return in the state must agree with what each route
answers, for an operator and for the store of `org-1`. Each route is then
called `CALLS` times as the API calls it; the median and worst are printed
against the 100 ms target, never asserted.
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

from node.api import analytics
from tests.helpers.executed import ExecutedLedger
from tests.helpers.order_ledger import build, check_recount, make_readers

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_BENCH_ANALYTICS_ORDERS", "20000"))
CALLS = 20
TARGET_MS = 100


def call(route: Any, **params: Any) -> float:
    """Milliseconds one call of `route` takes."""
    started = time.perf_counter()
    asyncio.run(route(**params))
    return (time.perf_counter() - started) * 1000


CALLED = {
    "sales by sku": (analytics.get_sales, {"by": "sku"}),
    "sales by day": (analytics.get_sales, {"by": "day"}),
    "sales by channel": (analytics.get_sales, {"by": "channel"}),
    "sales by location": (analytics.get_sales, {"by": "location"}),
    "times": (analytics.get_times, {}),
    "outcomes": (analytics.get_outcomes, {}),
    "allocation": (analytics.get_allocation, {}),
    "sales by sku, csv": (analytics.get_sales, {"by": "sku", "format": "csv"}),
}


@pytest.mark.timeout(3600)
def test_analytics_routes_on_twenty_thousand_orders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = ExecutedLedger(tmp_path / "db")
    try:
        started = time.perf_counter()
        build(ledger, ORDERS)
        built_s = time.perf_counter() - started
        counts = check_recount(ledger)
        assert counts["operator"]["orders"] == ORDERS
        node = SimpleNamespace(store=ledger.store)
        figures = []
        for who, reader in make_readers(ledger).items():
            for name, (route, params) in CALLED.items():
                times = [call(route, node=node, reader=reader, **{"format": "json", **params}) for _ in range(CALLS)]
                figures.append(
                    f"{who:8} {name:18} median {statistics.median(times):6.2f} ms, worst {max(times):6.2f} ms"
                    f" (target {TARGET_MS} ms: {'met' if max(times) < TARGET_MS else 'missed'})"
                )
        with capsys.disabled():
            print(
                f"\nanalytics on {ORDERS} orders ({ledger.store.height} blocks built through the executor in "
                f"{built_s:.0f} s; the recount agreed for the operator and for the store of org-1, "
                f"{counts['store']['orders']} orders):"
            )
            for line in figures:
                print("  " + line)
    finally:
        ledger.close()
