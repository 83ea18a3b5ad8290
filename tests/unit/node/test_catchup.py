"""Catch-up on a real LevelDB store: a node applies the blocks a peer serves, re-executing each one.

The peer's chain is built through the node's own executor (orders placed,
allocated, derived views written). The catching-up node runs `CatchUp` with
block sync over the memory network: it must reach the peer's head, state root
and derived views; stop before a block whose state root does not match its
own execution; and, killed mid-way while its blocks are not yet synced to the
disk, reopen at a consistent head from which it catches up to the same root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.block import Block, Receipt
from ledger.commitment import compute_commitment
from ledger.store import Store
from node.catchup import CatchUp
from node.executor import Executor
from p2p.memory import MemoryChain, MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.sync import BlockReader, BlockSync, SyncedBlock
from tests.helpers.chain import certify
from tests.helpers.contracts import get_contracts, make_oms_network
from tests.helpers.executed import ExecutedLedger
from tests.helpers.order_ledger import HOUR_MS, order_tx, setup_txs

NETWORK = make_oms_network()
GENESIS = NETWORK.genesis
BLOCKS = 40
"""Blocks of orders after the setup block."""

ORDERS_PER_BLOCK = 3
SERVER = "node-0"
SELF = "node-1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A peer's store: the catalogue and stock, then `BLOCKS` blocks of orders."""
    ledger = ExecutedLedger(tmp_path_factory.mktemp("peer") / "data")
    ledger.commit_block(setup_txs(), HOUR_MS)
    for n in range(BLOCKS):
        receipts = ledger.commit_block([order_tx(n * ORDERS_PER_BLOCK + i) for i in range(ORDERS_PER_BLOCK)])
        assert all(receipt.ok for receipt in receipts)
    yield ledger.store
    ledger.close()


def make_catch_up(
    store: Store, serving: BlockReader, on_height: Callable[[int], None] = lambda height: None
) -> CatchUp:
    """The node's catch-up over `store`, fetching from one peer that serves `serving` in small batches, telling
    `on_height` each height it applied."""
    source = MemorySyncSource(MemoryNetwork(GENESIS), SELF)
    source.chains[SERVER] = serving
    executor = Executor(store, get_contracts(), GENESIS)
    peers = PeerTable.from_genesis(GENESIS, SELF)

    def on_applied(block: Block, receipts: list[Receipt]) -> None:
        on_height(block.height)

    return CatchUp(
        executor,
        lambda apply: BlockSync(GENESIS, source, peers, apply, batch_size=7, validators=executor.get_validators),
        on_applied,
        lambda: None,
        state_sync_mode=False,
    )


def stored(store: Store, height: int) -> SyncedBlock:
    """Block `height` of `store` and its certificate."""
    block, certificate = store.get_block(height), store.get_certificate(height)
    assert block is not None and certificate is not None
    return block, certificate


def derived_entries(store: Store) -> list[tuple[bytes, bytes]]:
    return list(store.scan_derived(b"", b"\xff"))


def test_catches_up_to_the_peers_head_root_and_derived_views(served: Store, tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    applied: list[int] = []
    asyncio.run(make_catch_up(store, served, applied.append).catch_up_once(stalled=True))
    assert applied == list(range(1, served.height + 1))
    assert store.head() == served.head()
    assert derived_entries(store) == derived_entries(served)
    store.close()
    reopened = Store(tmp_path / "data")
    assert reopened.head() == served.head()
    assert compute_commitment(reopened.iter_state()) == served.state_root()
    reopened.close()


def forged_at(served: Store, height: int) -> list[SyncedBlock]:
    """The peer's chain with block `height` certified with a state root its txs do not produce."""
    chain = []
    for h in range(1, served.height + 1):
        block, certificate = stored(served, h)
        if h == height:
            header = dataclasses.replace(block.header, state_root=bytes(32))
            block = Block(header, block.txs)
            certificate = certify(NETWORK, block)
        chain.append((block, certificate))
    return chain


def test_stops_before_a_certified_block_whose_state_root_it_does_not_reproduce(served: Store, tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    catch_up = make_catch_up(store, MemoryChain(forged_at(served, 12)))
    asyncio.run(catch_up.catch_up_once(stalled=True))
    assert catch_up.last_report is not None
    assert "state root does not match" in catch_up.last_report.refused[SERVER]
    good = stored(served, 11)[0]
    head = store.head()
    assert head is not None and store.get_block(12) is None
    assert (head.height, head.block_hash, head.state_root) == (11, good.hash(), good.header.state_root)
    store.close()


def run_catch_up(peer_dir: str, store_dir: str) -> None:
    """Catch up the store at `store_dir` from a copy of the peer's store at `peer_dir`, printing each height
    applied (the body of the process the crash test kills)."""
    catch_up = make_catch_up(Store(store_dir), Store(peer_dir), lambda height: print(height, flush=True))
    asyncio.run(catch_up.catch_up_once(stalled=True))


def copy_store(store: Store, path: Path) -> None:
    """Write every key of `store` into a new LevelDB at `path` (the source stays open in this process)."""
    copy = Store(path)
    with copy.raw_db().write_batch() as batch:
        for key, value in store.raw_db().iterator():
            batch.put(key, value)
    copy.close()


def test_a_node_killed_mid_catch_up_reopens_at_a_consistent_head_and_finishes(served: Store, tmp_path: Path) -> None:
    copy_store(served, tmp_path / "peer")
    target = tmp_path / "data"
    code = "import sys; from tests.unit.node.test_catchup import run_catch_up; run_catch_up(sys.argv[1], sys.argv[2])"
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "peer"), str(target)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            seen = int(line)
            if seen >= served.height // 2:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    assert served.height // 2 <= seen < served.height, "the process ended before it could be killed mid-way"
    store = Store(target)
    head = store.head()
    assert head is not None and seen <= head.height <= served.height
    block = store.get_block(head.height)
    assert block is not None and block.hash() == head.block_hash == stored(served, head.height)[0].hash()
    assert compute_commitment(store.iter_state()) == head.state_root
    asyncio.run(make_catch_up(store, served).catch_up_once(stalled=True))
    assert store.head() == served.head()
    assert derived_entries(store) == derived_entries(served)
    store.close()


def test_a_block_applied_without_sync_is_kept_once_flushed(served: Store, tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    executor = Executor(store, get_contracts(), GENESIS)
    for height in range(1, 4):
        executor.commit(*stored(served, height), sync=False)
    store.flush()
    store.close()
    reopened = Store(tmp_path / "data")
    head = reopened.head()
    block = stored(served, 3)[0]
    assert head is not None and (head.height, head.block_hash, head.state_root) == (
        3,
        block.hash(),
        block.header.state_root,
    )
    reopened.close()
