"""Execution speed of the order path: a block of `order.create` txs through the real contract runtime.

The base state is a real LevelDB `Store` (what nodes execute on) holding a catalogue, a network of
stocked locations and a block of earlier orders; the measured block is executed on a fresh
`StateView` over it, then its state commitment is computed, as a primary does before it proposes.
Run with `make bench` (or `pytest -m bench -s tests/bench`); figures are printed, never asserted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from contracts import ContractSet, load_contracts
from contracts.context import BlockContext
from ledger.block import Receipt, genesis_hash
from ledger.encoding import hash_value
from ledger.state import StateView
from ledger.store import Store
from ledger.tx import Tx
from node.changes import BlockChanges
from node.executor import compute_derived_writes
from tests.helpers.builders import Network, make_network
from tests.helpers.chain import certify, make_block

pytestmark = pytest.mark.bench

SKUS = 200
"""SKUs in the catalogue."""

LOCATIONS = 24
"""Stocked locations (stores and warehouses, over four organisations)."""

ORDERS = 1000
"""Orders in the measured block (and in the block of earlier orders before it)."""

START_MS = 1_700_000_000_000
"""Block time of the first block."""

RUNS = 3
"""The measured block runs this many times, each on a fresh view; the best run is reported."""


def make_setup_txs(network: Network) -> list[Tx]:
    """The catalogue, the locations and their stock."""
    txs = [
        network.tx(
            "operator-1",
            "sku.upsert",
            {
                "sku": f"SKU-{i:04d}",
                "price": 500 + 25 * i,
                "currency": "EUR",
                "tax_class": "reduced" if i % 5 == 0 else "standard",
            },
        )
        for i in range(SKUS)
    ]
    for i in range(LOCATIONS):
        txs.append(
            network.tx(
                "operator-1",
                "location.upsert",
                {
                    "location": f"LOC-{i:03d}",
                    "type": "warehouse" if i % 3 == 0 else "store",
                    "org": f"org-{i % 4}",
                    "region": "BR",
                    "lat": -23_550_000 + (i % 6) * 150_000,
                    "lon": -46_633_000 + (i // 6) * 150_000,
                    "ships_online": True,
                    "pickup_allowed": i % 3 != 0,
                    "priority": 100 + i % 4,
                },
            )
        )
    for i in range(LOCATIONS):
        for start in range(0, SKUS, 100):
            lines = [{"sku": f"SKU-{s:04d}", "qty": 5_000} for s in range(start, start + 100) if (s + i) % 4]
            txs.append(network.tx("operator-1", "stock.receive", {"location": f"LOC-{i:03d}", "lines": lines}))
    return txs


def make_order_txs(network: Network, first: int, count: int) -> list[Tx]:
    """`count` orders of one to three lines: mostly delivered on account, some prepaid, some collected."""
    txs = []
    for n in range(first, first + count):
        payload: dict[str, Any] = {
            "external_ref": f"web-{n}",
            "currency": "EUR",
            "customer_hash": f"{n:064x}",
            "payment_terms": "prepaid" if n % 4 == 0 else "on_account",
            "shipping_charge": 490 if n % 2 else 0,
            "lines": [{"sku": f"SKU-{(n * 7 + k * 13) % SKUS:04d}", "qty": 1 + (n + k) % 3} for k in range(1 + n % 3)],
        }
        if n % 5 == 0:
            payload["pickup"] = f"LOC-{1 + 3 * (n % 7):03d}"
        else:
            payload["delivery"] = {"region": "BR", "lat": -23_500_000 + (n % 9) * 40_000, "lon": -46_600_000}
        txs.append(network.tx("channel-1", "order.create", payload))
    return txs


def commit(
    store: Store, network: Network, contracts: ContractSet, txs: Sequence[Tx]
) -> tuple[list[Receipt], dict[bytes, bytes | None]]:
    """Execute `txs` as the next block over `store` and commit it."""
    height = store.height + 1
    ctx = BlockContext(height, START_MS + height * 1000, network.genesis)
    state = StateView(store)
    receipts = contracts.execute_block(state, txs, ctx)
    writes = state.writes()
    tree = store.tree_after(writes)
    head = store.head()
    prev = head.block_hash if head else genesis_hash(network.genesis)
    block = make_block(network, height, prev, txs, receipts, tree.root, ctx.time_ms)
    store.commit_block(block, certify(network, block), receipts, writes, tree)
    return receipts, writes


def test_order_create_block(tmp_path: Path) -> None:
    network = make_network(4)
    contracts = load_contracts()
    store = Store(tmp_path / "db")
    try:
        setup, _ = commit(store, network, contracts, make_setup_txs(network))
        assert all(r.ok for r in setup), [r.message for r in setup if not r.ok][:3]
        earlier, _ = commit(store, network, contracts, make_order_txs(network, 0, ORDERS))
        assert all(r.ok for r in earlier), [r.message for r in earlier if not r.ok][:3]

        txs = make_order_txs(network, ORDERS, ORDERS)
        height = store.height + 1
        ctx = BlockContext(height, START_MS + height * 1000, network.genesis)
        executed_wall, executed_cpu = float("inf"), float("inf")
        for _ in range(RUNS):
            state = StateView(store)
            wall, cpu = time.perf_counter(), time.process_time()
            receipts = contracts.execute_block(state, txs, ctx)
            executed_wall = min(executed_wall, time.perf_counter() - wall)
            executed_cpu = min(executed_cpu, time.process_time() - cpu)
        writes = state.writes()
        started, started_cpu = time.perf_counter(), time.process_time()
        tree = store.tree_after(writes)
        committed, committed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        block = make_block(network, height, store.head().block_hash, txs, receipts, tree.root, ctx.time_ms)
        deriving = float("inf")
        for _ in range(RUNS):
            started = time.process_time()
            derived = compute_derived_writes(BlockChanges(store, block, writes), receipts, network.genesis)
            deriving = min(deriving, time.process_time() - started)
    finally:
        store.close()
    assert all(r.ok for r in receipts), [r.message for r in receipts if not r.ok][:3]
    derived_kib = sum(len(key) + len(value or b"") for key, value in derived.items()) / 1024
    fingerprint = hash_value(
        [[r.to_wire() for r in receipts], sorted([k, v] for k, v in writes.items() if not k.startswith(b"contract/"))]
    )
    print(
        f"\n{ORDERS} order.create in one block over {SKUS} SKUs at {LOCATIONS} locations: "
        f"executed in {executed_wall * 1000:.0f} ms wall, {executed_cpu * 1000:.0f} ms CPU (best of {RUNS}) "
        f"= {ORDERS / executed_cpu:,.0f} orders/s per core ({executed_cpu / ORDERS * 1e6:.0f} us each); "
        f"{len(writes)} keys, {sum(len(v or b'') for v in writes.values()) / 1024:.0f} KiB written; "
        f"commitment {committed * 1000:.0f} ms wall, {committed_cpu * 1000:.0f} ms CPU, "
        f"{len(tree.nodes)} tree nodes written; derived views {deriving * 1000:.0f} ms CPU (best of {RUNS}) "
        f"({len(derived)} entries, {derived_kib:.0f} KiB); state root {tree.root.hex()[:16]}, "
        f"results {fingerprint.hex()[:16]} (without contract pins)"
    )
