"""Benchmark: a page of orders by status and by date, and a page of the stock journal, at 10,000 and 1,000,000
orders.

The store is filled directly (order records, their list entries as the
executor derives them, one journal entry per order), which takes far less
time than committing a million orders through blocks; the pages are then read
through the same functions the API routes use. It reports figures and asserts
nothing about time: the point is that a page costs the same at both sizes.
Sizes: `OMS_BENCH_LIST_SIZES` (default `10000,1000000`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.encoding import encode, encode_unchecked
from ledger.state import StateView
from ledger.store import DERIVED_PREFIX, STATE_PREFIX, Store
from node.api.orders import summarize
from node.api.pages import collect, decode_cursor
from node.indexes import ALL_SCOPE, OrderMeta, OrderRange, compute_order_lists, scan_orders

pytestmark = pytest.mark.bench

SIZES = [int(size) for size in os.environ.get("OMS_BENCH_LIST_SIZES", "10000,1000000").split(",")]
STATUSES = ("released", "shipped", "delivered", "cancelled")
PAGE = 100
LOCATIONS = 20


def fill(store: Store, orders: int) -> None:
    """`orders` orders over `LOCATIONS` locations, one a second, each in its lists and with a journal entry."""
    db = store.raw_db()
    start_ms = 1_700_000_000_000
    batch = db.write_batch()
    for i in range(orders):
        order_id = f"SO{i:015d}"
        location = f"LOC-{i % LOCATIONS:02d}"
        order = {
            "order_id": order_id,
            "channel": "channel-1",
            "org": "org-0",
            "external_ref": f"ref-{i}",
            "status": STATUSES[i % len(STATUSES)],
            "currency": "EUR",
            "total": 1999,
            "created_ms": start_ms + i * 1000,
            "fulfilments": [],
        }
        batch.put(STATE_PREFIX + f"order/{order_id}".encode(), encode(order))
        for key in compute_order_lists(order, OrderMeta(["org-0"], [location], start_ms + i * 1000)):
            batch.put(DERIVED_PREFIX + key, encode_unchecked([order_id]))
        entry = {"seq": i, "location": location, "sku": "TEE-M", "kind": "reservation", "delta": 0, "tx_id": None}
        batch.put(STATE_PREFIX + f"journal/{location}/TEE-M/{i:010d}".encode(), encode(entry))
        if i % 20_000 == 19_999:
            batch.write()
            batch = db.write_batch()
    batch.write()


def timed(read_page: Callable[[str | None], str | None], pages: int = 20) -> tuple[float, float]:
    """Milliseconds per page: the first page, and each of the next `pages` pages followed by cursor."""
    started = time.perf_counter()
    cursor = read_page(None)
    first = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for _ in range(pages):
        cursor = read_page(cursor)
    return first, (time.perf_counter() - started) * 1000 / pages


@pytest.mark.parametrize("orders", SIZES)
def test_a_page_costs_the_same_at_any_number_of_orders(tmp_path: Path, orders: int) -> None:
    store = Store(tmp_path / "data")
    started = time.perf_counter()
    fill(store, orders)
    fill_s = time.perf_counter() - started
    state = StateView(store)
    middle_ms = 1_700_000_000_000 + orders // 2 * 1000

    def orders_page(query: OrderRange) -> Callable[[str | None], str | None]:
        def read(cursor: str | None) -> str | None:
            items, next_cursor = collect(
                scan_orders(store, query, decode_cursor(cursor)), PAGE, lambda oid: summarize(store, state, oid)
            )
            assert len(items) == PAGE
            return next_cursor

        return read

    def journal_page(cursor: str | None) -> str | None:
        items, next_cursor = collect(store.scan_state_after(b"journal/", decode_cursor(cursor)), PAGE, len)
        assert len(items) == PAGE
        return next_cursor

    figures = {
        "by status": timed(orders_page(OrderRange(ALL_SCOPE, "status", "shipped"))),
        "by status, one org": timed(orders_page(OrderRange("org-0", "status", "shipped"))),
        "by date from the middle": timed(orders_page(OrderRange(ALL_SCOPE, "created", "", middle_ms))),
        "journal": timed(journal_page),
    }
    store.close()
    print(f"\n{orders:,} orders (filled in {fill_s:.1f} s); ms per page of {PAGE}, first page / next pages:")
    for name, (first, following) in figures.items():
        print(f"  {name:<26} {first:6.2f} / {following:6.2f}")
