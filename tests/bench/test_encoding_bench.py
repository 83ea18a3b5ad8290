"""Benchmark: the canonical encoder and the bounded decoder on the records a node handles per order.

Three sets of records, all real: the `order.create` txs of the load generator
(`devnet.load.make_orders`, over synthetic baskets) one by one; the same txs
as one block and as the PRE-PREPARE that proposes it; and the world-state
records that executing that block writes (orders, fulfilments, stock, journal
entries...), encoded as a contract's `put` encodes them and decoded as a
state view reads them back. Each figure is the best of `RUNS` passes, in CPU
microseconds per record (per tx for the block and the PRE-PREPARE). Run with
`make bench` (or `pytest -m bench -s tests/bench`); figures are printed, never
asserted.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from consensus.messages import PrePrepare, decode_message, encode_message, sign_message
from contracts import load_contracts
from contracts.context import BlockContext
from devnet.baskets import synthetic_baskets
from devnet.load import make_orders
from ledger.block import Block, BlockHeader, compute_tx_root, encode_block
from ledger.encoding import decode, encode
from ledger.state import MemoryState, StateView
from ledger.tx import decode_tx, encode_tx
from tests.bench.test_execution_bench import START_MS, make_setup_txs
from tests.helpers.builders import make_network

pytestmark = pytest.mark.bench

ORDERS = 1000
"""Orders in the block (and txs encoded one by one)."""

RUNS = 30
"""Passes over each set; the best one is reported."""


def best_us(work: Callable[[Any], object], items: Sequence[Any], per: int = 0) -> float:
    """CPU microseconds per record of the fastest of `RUNS` passes of `work` over `items` (per `per` records
    each, when an item holds that many); the garbage collector is off meanwhile, as `timeit` does it."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(RUNS):
            started = time.process_time()
            for item in items:
                work(item)
            best = min(best, time.process_time() - started)
    finally:
        gc.enable()
    return best / (per or len(items)) * 1e6


def test_encode_and_decode_per_record() -> None:
    network = make_network(4)
    contracts = load_contracts()
    # the load generator's own orders, signed by test keys
    txs = make_orders(network.tx, list(synthetic_baskets(ORDERS)), "bench")
    wires = [tx.to_wire() for tx in txs]
    encoded_txs = [encode_tx(tx) for tx in txs]

    state = StateView(MemoryState())
    contracts.execute_block(state, make_setup_txs(network), BlockContext(1, START_MS, network.genesis))
    base = MemoryState({key: value for key, value in state.writes().items() if value is not None})
    state = StateView(base)
    receipts = contracts.execute_block(state, txs, BlockContext(2, START_MS + 1000, network.genesis))
    assert all(r.ok for r in receipts), [r.message for r in receipts if not r.ok][:3]
    stored = [value for value in state.writes().values() if value is not None]
    records = [decode(value) for value in stored]

    header = BlockHeader(
        chain_id=network.genesis.chain_id,
        height=2,
        prev_hash=bytes(32),
        timestamp_ms=START_MS + 1000,
        view=0,
        proposer="node-0",
        tx_root=compute_tx_root(txs),
        state_root=bytes(32),
        receipts_root=bytes(32),
    )
    block = Block(header, tuple(txs))
    encoded_block = encode(block.to_wire())
    pre_prepare = sign_message(PrePrepare(network.genesis.chain_id, 0, 2, block, "node-0"), network.keys["node-0"])
    encoded_pre_prepare = encode_message(pre_prepare)

    figures = {
        "tx: encode": best_us(encode, wires),
        "tx: encode_tx (from its signed bytes)": best_us(encode_tx, txs),
        "tx: decode": best_us(decode, encoded_txs),
        "tx: decode_tx (decode, shape, signing bytes)": best_us(decode_tx, encoded_txs),
        "block: encode": best_us(lambda b: encode(b.to_wire()), [block], ORDERS),
        "block: encode_block (txs spliced)": best_us(encode_block, [block], ORDERS),
        "block: decode and Block.from_wire": best_us(lambda d: Block.from_wire(decode(d)), [encoded_block], ORDERS),
        "PRE-PREPARE: encode_message": best_us(encode_message, [pre_prepare], ORDERS),
        "PRE-PREPARE: decode_message": best_us(decode_message, [encoded_pre_prepare], ORDERS),
        "state record: encode": best_us(encode, records),
        "state record: decode": best_us(decode, stored),
        "state record: decode(check=False)": best_us(lambda d: decode(d, check=False), stored),
    }
    print(
        f"\n{ORDERS} order.create txs ({sum(map(len, encoded_txs)) // ORDERS} bytes each), "
        f"{len(stored)} state records ({sum(map(len, stored)) // len(stored)} bytes each); "
        f"best of {RUNS}, CPU microseconds per record (per tx for the block and the PRE-PREPARE):"
    )
    for name, figure in figures.items():
        print(f"  {name:48} {figure:7.2f}")
