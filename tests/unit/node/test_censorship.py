"""The censorship watch: room counted by the work proposals are filled by, a tx forwarded to the primary at its
first timeout, the primary suspected only at the second."""

from __future__ import annotations

import random

from ledger.block import Block
from ledger.commitment import EMPTY
from ledger.genesis import ConsensusParams
from ledger.tx import Tx
from node.censorship import FORWARD, STUCK_AFTER_BLOCKS, SUSPECT, CensorshipWatch, Verdict
from node.mempool import Mempool
from tests.helpers.builders import make_network
from tests.helpers.chain import make_block
from tests.sim.app import SET_KIND

NET = make_network(4)

PARAMS = ConsensusParams(max_block_txs=40)
"""Blocks of 40 work units (1 KiB each), so a test crosses dozens of blocks with few txs."""

LARGEST_TX_BYTES = 8 * 1024
"""The largest tx of these tests (a node's is `MAX_TX_BYTES`)."""


def order(ref: str, padding: int = 0) -> Tx:
    """A signed tx of about `padding` bytes more than a small one."""
    return NET.tx("channel-1", SET_KIND, {"key": ref, "value": "x" * padding})


def size(tx: Tx) -> int:
    return len(tx.signing_bytes()) + len(tx.signature)


def block_of(txs: list[Tx]) -> Block:
    return make_block(NET, 1, b"\0" * 32, txs, [], EMPTY, 1)


def commit(block: Block, *pools: Mempool) -> None:
    for pool in pools:
        pool.remove([tx.id for tx in block.txs])


def test_an_honest_primary_behind_a_backlog_of_bulk_txs_is_never_suspected_though_the_fifos_differ():
    """Our oldest tx is a small order; the primary holds the same bulk txs (1 to 7 KiB) in another order, with ours
    last. Its blocks, filled oldest first by work, hold few txs (room by count and bytes) but no room for the
    largest tx by work: it is busy, not censoring, and is neither sent the tx nor suspected while it works
    through its backlog and then proposes ours."""
    rng = random.Random(7)
    bulk = [order(f"B-{i}", rng.randrange(1024, 7 * 1024)) for i in range(300)]
    ours_oldest = order("MINE")
    ours, primary = Mempool(), Mempool()
    for tx in [ours_oldest, *bulk]:
        ours.add(tx, size(tx), now_ms=0)
    for tx in [*reversed(bulk), ours_oldest]:
        primary.add(tx, size(tx), now_ms=0)
    watch = CensorshipWatch(PARAMS, LARGEST_TX_BYTES)
    verdicts: list[Verdict | None] = []
    blocks = []
    while ours_oldest.id in ours:
        blocks.append(block_of(primary.batch(PARAMS.max_block_txs)))
        commit(blocks[-1], ours, primary)
        verdicts.append(watch.on_commit(blocks[-1], ours.oldest()))
    roomy_by_count = [block for block in blocks if len(block.txs) < PARAMS.max_block_txs]
    assert len(roomy_by_count) > 2 * STUCK_AFTER_BLOCKS, "counted in txs, these blocks all had room"
    assert set(verdicts) == {None}
    assert ours_oldest in blocks[-1].txs


def run_trickle(primary_takes_forwarded: bool) -> list[Verdict]:
    """We hold a tx the primary never got (its gossip was lost); both pools get two fresh orders a block, which the
    primary proposes, so every block has room. The watch's verdicts until the tx commits or 40 blocks pass."""
    missing = order("MISSING")
    ours, primary = Mempool(), Mempool()
    ours.add(missing, size(missing), now_ms=0)
    watch = CensorshipWatch(PARAMS, LARGEST_TX_BYTES)
    verdicts = []
    for height in range(3 * STUCK_AFTER_BLOCKS):
        for tx in (order(f"T-{height}-a"), order(f"T-{height}-b")):
            ours.add(tx, size(tx), now_ms=height)
            primary.add(tx, size(tx), now_ms=height)
        block = block_of(primary.batch(PARAMS.max_block_txs))
        commit(block, ours, primary)
        verdict = watch.on_commit(block, ours.oldest())
        if verdict is not None:
            verdicts.append(verdict)
        if verdict == FORWARD and primary_takes_forwarded:
            primary.add(missing, size(missing), now_ms=height)
        if missing.id not in ours:
            break
    return verdicts


def test_a_primary_that_drops_a_forwarded_tx_is_suspected_at_the_second_timeout():
    assert run_trickle(primary_takes_forwarded=False) == [FORWARD, SUSPECT]


def test_a_primary_that_lacked_a_tx_is_sent_it_and_never_suspected_once_it_proposes_it():
    assert run_trickle(primary_takes_forwarded=True) == [FORWARD]
