"""Benchmark: the analytics routes on a ledger of 20,000 orders, recounted from the raw orders.

The ledger is built in-process through the node's own executor on a real
LevelDB store (much faster than a devnet, and the same code a node runs at
commit, analytics totals included): a catalogue, a warehouse of `org-0` and
a store of `org-1` each stocking two thirds of the SKUs (so some orders
split), then `ORDERS` orders of the web shop in blocks of `BLOCK_TXS`, of
which every thirteenth is cancelled, every seventeenth intercepted and
released, most shipped and delivered an hour or more later, and every
eleventh delivered one returned. A recount from every order and return in
the state (`tests.helpers.analytics`) must agree with what each route
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
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contracts import keys, queries
from ledger.encoding import decode
from node.api import analytics
from node.tokens import Principal
from tests.helpers.analytics import check_routes, recount
from tests.helpers.executed import ExecutedLedger

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_BENCH_ANALYTICS_ORDERS", "20000"))
BLOCK_TXS = 1000
"""Txs per block."""
CALLS = 20
SKUS = [f"SKU-{n:03d}" for n in range(60)]
LOCATIONS = {"WH-1": ("org-0", "operator-1", "warehouse"), "ST-2": ("org-1", "store-2", "store")}
"""Location -> (organisation, who ships from it, type)."""
HOUR_MS = 3_600_000
TARGET_MS = 100


def stocks(location: str, index: int) -> bool:
    """Whether `location` stocks SKU number `index`: each of them two thirds, the one third in between both."""
    return index % 3 != (1 if location == "WH-1" else 0)


def in_blocks(items: list[tuple[str, str, dict[str, Any]]]) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    for start in range(0, len(items), BLOCK_TXS):
        yield items[start : start + BLOCK_TXS]


def commit_all(ledger: ExecutedLedger, txs: list[tuple[str, str, dict[str, Any]]], step_ms: int) -> list[Any]:
    """Commit `txs` in blocks `step_ms` apart; every receipt must be ok."""
    receipts = []
    for block in in_blocks(txs):
        done = ledger.commit_block(block, step_ms)
        refused = [r.message for r in done if not r.ok]
        assert not refused, refused[:3]
        receipts.extend(done)
    return receipts


def setup_txs() -> list[tuple[str, str, dict[str, Any]]]:
    txs: list[tuple[str, str, dict[str, Any]]] = [
        ("operator-1", "sku.upsert", {"sku": sku, "price": 990 + 10 * n, "currency": "EUR", "tax_class": "standard"})
        for n, sku in enumerate(SKUS)
    ]
    for n, (location, (org, _, kind)) in enumerate(LOCATIONS.items()):
        place = {"location": location, "type": kind, "org": org, "region": "NL", "lat": 52_000_000 + n * 100_000}
        place |= {"lon": 4_900_000, "ships_online": True, "pickup_allowed": False, "priority": 100}
        txs.append(("operator-1", "location.upsert", place))
        lines = [{"sku": sku, "qty": 1_000_000} for i, sku in enumerate(SKUS) if stocks(location, i)]
        txs.append(("operator-1", "stock.receive", {"location": location, "document": f"PO-{n}", "lines": lines}))
    return txs


def order_tx(i: int) -> tuple[str, str, dict[str, Any]]:
    lines = [{"sku": SKUS[(i * 7 + k * 11) % len(SKUS)], "qty": 1 + (i + k) % 3} for k in range(1 + i % 3)]
    payload = {"external_ref": f"web-{i}", "currency": "EUR", "customer_hash": f"{i:064x}"}
    payload |= {"payment_terms": "on_account", "lines": lines}
    payload["delivery"] = {"region": "NL", "lat": 52_000_000 + (i % 9) * 30_000, "lon": 4_900_000}
    return ("channel-1", "order.create", payload)


def fulfilments_of(ledger: ExecutedLedger, order_id: str) -> list[dict[str, Any]]:
    order = ledger.state.get(keys.order_key(order_id))
    assert order is not None
    found = [ledger.state.get(keys.fulfilment_key(f)) for f in order["fulfilments"]]
    return [fulfilment for fulfilment in found if fulfilment is not None]


def build(ledger: ExecutedLedger) -> None:
    """The catalogue and stock, then the orders and what happens to them, block by block."""
    commit_all(ledger, setup_txs(), HOUR_MS)
    placed = commit_all(ledger, [order_tx(i) for i in range(ORDERS)], HOUR_MS // 2)
    order_ids = [str(receipt.result["order_id"]) for receipt in placed]
    cancel, intercept, ship = [], [], []
    for i, order_id in enumerate(order_ids):
        if i % 13 == 0:
            cancel.append(("channel-1", "order.cancel", {"order_id": order_id, "reason": "changed mind"}))
            continue
        if i % 17 == 0:
            reason = "address" if i % 2 else "fraud check"
            intercept.append(("channel-1", "order.intercept", {"order_id": order_id, "reason": reason}))
            intercept.append(("operator-1", "order.release", {"order_id": order_id, "note": "checked"}))
        for fulfilment in fulfilments_of(ledger, order_id):
            _, shipper, _ = LOCATIONS[fulfilment["location"]]
            ship.append((shipper, "fulfilment.ship", {"fulfilment_id": fulfilment["fulfilment_id"], "carrier": "DHL"}))
    commit_all(ledger, cancel + intercept, HOUR_MS)
    commit_all(ledger, ship, HOUR_MS)
    deliver = [(signer, "fulfilment.deliver", {"fulfilment_id": p["fulfilment_id"]}) for signer, _, p in ship[::4]]
    deliver += [(signer, "fulfilment.deliver", {"fulfilment_id": p["fulfilment_id"]}) for signer, _, p in ship[1::4]]
    commit_all(ledger, deliver, 3 * HOUR_MS)
    returns = []
    for i, order_id in enumerate(order_ids):
        order = ledger.state.get(keys.order_key(order_id))
        if i % 11 == 0 and order is not None and order["status"] == "delivered":
            lines = [{"sku": order["lines"][0]["sku"], "qty": 1}]
            reason = "too small" if i % 2 else "damaged"
            returns.append(("channel-1", "return.request", {"order_id": order_id, "reason": reason, "lines": lines}))
    commit_all(ledger, returns, HOUR_MS)


def read_orders(ledger: ExecutedLedger, reader: Principal) -> list[dict[str, Any]]:
    """Every order in the state that `reader` sees, with its fulfilments, as the API shows it."""
    state = ledger.state
    seen = []
    for _, raw in ledger.store.scan_state(keys.order_key("").encode()):
        order = queries.get_order(state, decode(raw)["order_id"])
        assert order is not None
        if reader.sees_all or reader.org in {order["org"], *(f["org"] for f in order["fulfilments"])}:
            seen.append(order)
    return seen


def call(route: Any, **params: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    answer = asyncio.run(route(**params))
    return answer, (time.perf_counter() - started) * 1000


ROUTES = {"sales": analytics.get_sales, "times": analytics.get_times, "outcomes": analytics.get_outcomes}
ROUTES["allocation"] = analytics.get_allocation


@pytest.mark.timeout(3600)
def test_analytics_routes_on_twenty_thousand_orders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = ExecutedLedger(tmp_path / "db")
    try:
        started = time.perf_counter()
        build(ledger)
        built_s = time.perf_counter() - started
        node = SimpleNamespace(store=ledger.store)
        genesis = ledger.network.genesis
        operator, store = genesis.identity("operator-1"), genesis.identity("store-2")
        assert operator is not None and store is not None
        readers = {"operator": Principal("t1", operator, frozenset()), "store": Principal("t2", store, frozenset())}
        counts = {}
        for who, reader in readers.items():
            orders = read_orders(ledger, reader)
            counted = recount(orders, lambda return_id: queries.get_return(ledger.state, return_id) or {})

            def answer(route: str, params: dict[str, Any], reader: Principal = reader) -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = call(ROUTES[route], node=node, reader=reader, format="json", **params)[0]
                return rows["rows"]  # type: ignore[call-overload]

            check_routes(answer, counted)
            counts[who] = counted
        assert counts["operator"]["orders"] == ORDERS > counts["store"]["orders"] > 0
        assert {kind for kind, _ in counts["operator"]["outcomes"]} == {"cancelled", "intercepted", "returned"}
        assert counts["operator"]["allocation"]["split_orders"] > 0

        figures = []
        calls = {
            "sales by sku": (analytics.get_sales, {"by": "sku"}),
            "sales by day": (analytics.get_sales, {"by": "day"}),
            "sales by channel": (analytics.get_sales, {"by": "channel"}),
            "sales by location": (analytics.get_sales, {"by": "location"}),
            "times": (analytics.get_times, {}),
            "outcomes": (analytics.get_outcomes, {}),
            "allocation": (analytics.get_allocation, {}),
            "sales by sku, csv": (analytics.get_sales, {"by": "sku", "format": "csv"}),
        }
        for who, reader in readers.items():
            for name, (route, params) in calls.items():
                params = {"format": "json", **params}
                times = [call(route, node=node, reader=reader, **params)[1] for _ in range(CALLS)]
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
