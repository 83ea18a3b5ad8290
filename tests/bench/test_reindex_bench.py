"""Benchmark: rebuilding the lists and the money per day from a state loaded by state sync.

A state of `OMS_BENCH_REINDEX_ORDERS` orders (default 100,000), each shipped
from one warehouse with its invoice, is made by copying one order that the
real contracts placed, shipped and invoiced (new ids, numbers and times), and
loaded into a store as state sync loads it; `node.reindex.rebuild_derived`
then runs as a node runs it after loading a snapshot. It reports the time
per order and asserts only that every order was listed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.block import genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import encode
from ledger.store import Head, Store
from node.reindex import mark_rebuild, rebuild_derived
from tests.helpers.builders import make_network
from tests.helpers.chain import certify, make_block
from tests.helpers.contracts import create, make_shop, ok, receive

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_BENCH_REINDEX_ORDERS", "100000"))


def shipped_order() -> tuple[dict[bytes, Any], dict[str, Any]]:
    """The state of a shop with one order shipped and invoiced, and that order's records by kind."""
    ledger = make_shop()
    receive(ledger, "WH1", "TEE", 10)
    order = ok(create(ledger, "bench", [{"sku": "TEE", "qty": 2}], payment_terms="on_account"))
    fulfilment = f"{order['order_id']}-1"
    ok(ledger.submit("store-1", "fulfilment.pick", {"fulfilment_id": fulfilment}))
    ok(ledger.submit("store-1", "fulfilment.ship", {"fulfilment_id": fulfilment, "carrier": "PostNL", "tracking": "1"}))
    state = ledger.state
    records = {
        "order": state.get(f"order/{order['order_id']}"),
        "fulfilment": state.get(f"fulfilment/{fulfilment}"),
        "invoice": next(document for _, document in state.scan("invoice/")),
    }
    return dict(ledger.base.entries), records


def copies(records: dict[str, Any], count: int) -> Iterator[tuple[bytes, bytes]]:
    """`count` copies of the order, its fulfilment and its invoice under new ids, a minute apart."""
    order, fulfilment, invoice = records["order"], records["fulfilment"], records["invoice"]
    for i in range(count):
        order_id, shift = f"SO{i:016d}", i * 60_000
        fulfilment_id, seq = f"{order_id}-1", i + 1
        number = f"{invoice['issuer']}-{seq:08d}"
        yield (
            f"order/{order_id}".encode(),
            encode(
                {
                    **order,
                    "order_id": order_id,
                    "external_ref": f"ref-{i}",
                    "fulfilments": [fulfilment_id],
                    "created_ms": order["created_ms"] + shift,
                    "history": [{**step, "time_ms": step["time_ms"] + shift} for step in order["history"]],
                }
            ),
        )
        yield (
            f"fulfilment/{fulfilment_id}".encode(),
            encode(
                {
                    **fulfilment,
                    "fulfilment_id": fulfilment_id,
                    "order_id": order_id,
                    "invoice": number,
                    "events": [{**event, "time_ms": event["time_ms"] + shift} for event in fulfilment["events"]],
                }
            ),
        )
        yield (
            f"invoice/{invoice['issuer']}/{seq:08d}".encode(),
            encode(
                {**invoice, "number": number, "seq": seq, "order_id": order_id, "time_ms": invoice["time_ms"] + shift}
            ),
        )
        yield f"orderinvoice/{order_id}/{number}".encode(), encode(number)


def test_rebuild_after_state_sync(tmp_path: Path) -> None:
    shop, records = shipped_order()
    kept = {key: value for key, value in shop.items() if not key.startswith((b"order", b"fulfilment/", b"invoice/"))}
    entries = sorted([*kept.items(), *copies(records, ORDERS)])
    network = make_network()
    root = compute_commitment(entries)
    block = make_block(network, 10, genesis_hash(network.genesis), [], [], root, records["order"]["created_ms"])
    store = Store(tmp_path / "synced")
    try:
        mark_rebuild(store)
        head = Head(10, block.hash(), block.header.state_root, block.header.timestamp_ms)
        store.load_state(iter(entries), head, block, certify(network, block))
        del entries
        started = time.perf_counter()
        report = rebuild_derived(store)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    assert (report.orders, report.documents, report.skipped) == (ORDERS, ORDERS, 0)
    print(
        f"\nrebuilt the lists and money per day of {ORDERS:,} shipped and invoiced orders in {seconds:.1f} s: "
        f"{seconds / ORDERS * 1e6:.0f} µs per order ({seconds / ORDERS * 1e6:.0f} s per million)"
    )
