"""Catch-up speed of the p2p layer alone (no re-execution): block sync replay and a 1,000,000-order state sync.

Run with `pytest -m bench -s tests/unit/p2p/test_bench_sync.py`; figures are printed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from p2p_chains import build_chain, certify, make_block

from ledger.block import Block, CommitCertificate, genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import encode
from ledger.state import MemoryState
from p2p.memory import MemoryChain, MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.snapshot import SnapshotOffer, StateSync
from p2p.sync import BlockSync
from tests.helpers.builders import make_network

pytestmark = pytest.mark.bench

NET = make_network(4)
GENESIS = NET.genesis


def test_block_sync_replay_speed() -> None:
    blocks, txs_per_block = 2000, 20
    chain = build_chain(NET, blocks, txs_per_block)
    source = MemorySyncSource(MemoryNetwork(GENESIS), "node-3")
    source.chains["node-0"] = MemoryChain(chain)
    applied: list[int] = []
    sync = BlockSync(GENESIS, source, PeerTable.from_genesis(GENESIS, "node-3"), lambda b, c: applied.append(b.height))
    report = asyncio.run(sync.sync(0))
    assert applied == list(range(1, blocks + 1))
    print(
        f"\nblock sync (fetch, decode, verify certificate and hashes; no execution): {blocks} blocks, "
        f"{report.txs} txs in {report.seconds:.2f} s = {blocks / report.seconds:,.0f} blocks/s, "
        f"{report.txs / report.seconds:,.0f} txs/s"
    )


def test_state_sync_of_a_million_orders() -> None:
    orders = 1_000_000
    entries = {
        f"order/A-{i:08d}".encode(): encode(
            {"channel": "channel-1", "lines": [[f"SKU-{i % 500}", 1 + i % 3]], "status": "placed"}
        )
        for i in range(orders)
    }
    block = make_block(NET, 5000, genesis_hash(GENESIS), [], state_root=compute_commitment(entries.items()))
    source = MemorySyncSource(MemoryNetwork(GENESIS), "node-3")
    started = time.perf_counter()
    source.snapshots["node-0"] = SnapshotOffer(MemoryState(entries), block, certify(NET, block))
    offered = time.perf_counter() - started
    loaded: list[int] = []

    def load(block: Block, certificate: CommitCertificate, items: Iterator[tuple[bytes, bytes]]) -> None:
        loaded.append(sum(1 for _ in items))

    sync = StateSync(GENESIS, source, PeerTable.from_genesis(GENESIS, "node-3"), load)
    started = time.perf_counter()
    manifest = asyncio.run(sync.sync())
    seconds = time.perf_counter() - started
    assert manifest is not None and loaded == [orders]
    print(
        f"\nstate sync of {orders:,} orders ({manifest.chunks} chunks): offer built in {offered:.2f} s, "
        f"fetched, verified and handed to the loader in {seconds:.2f} s ({orders / seconds:,.0f} entries/s)"
    )
