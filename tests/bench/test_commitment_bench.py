"""Cost of the state commitment per block: the Merkle tree's update for a block's writes over a large state.

A real LevelDB `Store` is loaded with `STATE` order-like entries (as state sync loads a snapshot, which builds
the tree), then a block's worth of writes (half new keys, half changed values) goes through `Store.tree_after`,
as a primary does before it proposes, and is committed. Run with `pytest -m bench -s tests/bench`; figures are
printed, never asserted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger.block import genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import encode
from ledger.store import Head, Store
from tests.helpers.builders import make_network
from tests.helpers.chain import certify, make_block

pytestmark = pytest.mark.bench

STATE = 200_000
"""State entries before the measured block."""

WRITES = 9_000
"""Keys the measured block writes (a block of 1,000 orders writes about this many)."""


def entry(n: int, version: int = 0) -> tuple[bytes, bytes]:
    return f"order/A-{n:08d}".encode(), encode({"lines": [[f"SKU-{n % 500}", 1 + n % 3]], "v": version})


def test_tree_update_per_block(tmp_path: Path) -> None:
    network = make_network(4)
    store = Store(tmp_path / "db")
    try:
        started = time.perf_counter()
        entries = [entry(n) for n in range(STATE)]
        dumped = time.process_time()
        root = compute_commitment(entries)
        dumped = time.process_time() - dumped
        block = make_block(network, 1, genesis_hash(network.genesis), [], [], root, 1)
        head = Head(1, block.hash(), block.header.state_root, 1)
        built = time.process_time()
        store.load_state(iter(entries), head, block, certify(network, block))
        built = time.process_time() - built
        loaded = time.perf_counter() - started
        writes: dict[bytes, bytes | None] = dict(entry(n, 1) for n in range(0, WRITES, 2))
        writes |= dict(entry(STATE + n) for n in range(WRITES // 2))
        wall, cpu = time.perf_counter(), time.process_time()
        tree = store.tree_after(writes)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        block = make_block(network, 2, block.hash(), [], [], tree.root, 2)
        committing = time.perf_counter()
        store.commit_block(block, certify(network, block), [], writes, tree)
        committing = time.perf_counter() - committing
    finally:
        store.close()
    print(
        f"\nstate tree over {STATE:,} entries (loaded and built in {loaded:.1f} s wall; the root of the dump "
        f"{dumped:.2f} s CPU, the store's load with its tree {built:.2f} s CPU): a block of {len(writes):,} writes "
        f"updates it in {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU = {cpu / len(writes) * 1e6:.0f} us CPU per "
        f"write, {len(tree.nodes):,} node records written; the block's commit {committing * 1000:.0f} ms wall"
    )
