"""The bulk path against single orders: one block of 1,000 `order.create` and one of 10 `order.import` of 100.

Both blocks carry the same orders (same payloads, same catalogue, network and stock) and run through a
node's own `Executor` over a real LevelDB `Store`: `execute` is the contracts alone (what a primary and
every replica do before they vote), `commit` is the whole path a decided block takes (execution, the state
commitment, the derived views and the store's batch). Each is measured in CPU time (`process_time`) per
order, best of a few runs, each on a fresh store. Run with `pytest -m bench -s tests/bench/test_import_bench.py`;
figures are printed, never asserted, but both blocks must place every order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts import ContractSet, load_contracts
from ledger.store import Store
from ledger.tx import Tx
from node.executor import Executor
from tests.bench.test_execution_bench import START_MS, commit, make_order_txs, make_setup_txs
from tests.helpers.builders import Network, make_network
from tests.helpers.chain import certify

pytestmark = pytest.mark.bench

ORDERS = 1000
"""Orders in the measured block."""

IMPORT_SIZE = 100
"""Orders in each `order.import` of the bulk block."""

RUNS = 3
"""Runs of each block, each on a fresh store; the best is reported."""


def make_import_txs(network: Network, singles: list[Tx]) -> list[Tx]:
    """The orders of `singles` again, `IMPORT_SIZE` to an `order.import`."""
    return [
        network.tx("channel-1", "order.import", {"orders": [tx.payload for tx in singles[start : start + IMPORT_SIZE]]})
        for start in range(0, len(singles), IMPORT_SIZE)
    ]


def measure(
    path: Path, network: Network, contracts: ContractSet, make_txs: Callable[[Network], list[Tx]]
) -> tuple[float, float]:
    """CPU seconds to execute, and to execute and commit, the block of `make_txs` over a fresh store."""
    store = Store(path)
    try:
        setup, _ = commit(store, network, contracts, make_setup_txs(network))
        assert all(r.ok for r in setup), [r.message for r in setup if not r.ok][:3]
        txs = make_txs(network)
        executor = Executor(store, contracts, network.genesis)
        height = store.height + 1
        started = time.process_time()
        executor.execute(height, START_MS + height * 1000, txs)
        executed = time.process_time() - started
        started = time.process_time()
        block = executor.build_block(height, 0, network.genesis.validator_ids()[0], START_MS + height * 1000, txs)
        receipts = executor.commit(block, certify(network, block))
        committed = time.process_time() - started
    finally:
        store.close()
    assert all(r.ok for r in receipts), [r.message for r in receipts if not r.ok][:3]
    for receipt in receipts:
        results = receipt.result.get("orders", [receipt.result])
        assert all(result.get("duplicate") is False for result in results), results[:3]
    return executed, committed


def test_import_against_single_orders(tmp_path: Path) -> None:
    network = make_network(4)
    contracts = load_contracts()
    shapes: dict[str, Callable[[Network], list[Tx]]] = {
        f"{ORDERS} order.create": lambda net: make_order_txs(net, 0, ORDERS),
        f"{ORDERS // IMPORT_SIZE} order.import of {IMPORT_SIZE}": lambda net: make_import_txs(
            net, make_order_txs(net, 0, ORDERS)
        ),
    }
    best = {name: (float("inf"), float("inf")) for name in shapes}
    for run in range(RUNS):
        for name, make_txs in shapes.items():
            executed, committed = measure(tmp_path / f"{run}-{len(name)}", network, contracts, make_txs)
            best[name] = (min(best[name][0], executed), min(best[name][1], committed))
    print()
    for name, (executed, committed) in best.items():
        print(
            f"{name}: execution {executed / ORDERS * 1e6:.0f} us CPU per order, "
            f"whole commit {committed / ORDERS * 1e6:.0f} us CPU per order (best of {RUNS})"
        )
