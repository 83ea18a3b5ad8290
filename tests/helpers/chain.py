"""Building signed chains of blocks without a network, for store, sync and verify tests."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.block import (
    Block,
    BlockHeader,
    CommitCertificate,
    Receipt,
    commit_sign_bytes,
    compute_receipts_root,
    compute_tx_root,
)
from ledger.store import Store
from ledger.tx import Tx
from tests.helpers.builders import Network


def certify(network: Network, block: Block, signers: Sequence[str] | None = None, view: int = 0) -> CommitCertificate:
    """A commit certificate signed by `signers` (by default a quorum of validators)."""
    genesis = network.genesis
    signers = list(signers) if signers is not None else genesis.validator_ids()[: genesis.quorum]
    message = commit_sign_bytes(genesis.chain_id, block.height, view, block.hash())
    return CommitCertificate(
        block.height, view, block.hash(), tuple(sorted((v, network.keys[v].sign(message)) for v in signers))
    )


def make_block(
    network: Network,
    height: int,
    prev_hash: bytes,
    txs: Sequence[Tx],
    receipts: Sequence[Receipt],
    state_root: bytes,
    timestamp_ms: int,
) -> Block:
    header = BlockHeader(
        chain_id=network.genesis.chain_id,
        height=height,
        prev_hash=prev_hash,
        timestamp_ms=timestamp_ms,
        view=0,
        proposer=network.genesis.validator_ids()[0],
        tx_root=compute_tx_root(txs),
        state_root=state_root,
        receipts_root=compute_receipts_root(receipts),
    )
    return Block(header, tuple(txs))


def commit_raw_block(store: Store, network: Network, writes: dict[bytes, bytes | None], txs: Sequence[Tx]) -> Block:
    """Commit a block whose state writes are given directly (no contracts), with ok receipts."""
    from ledger.block import genesis_hash

    head = store.head()
    prev = head.block_hash if head else genesis_hash(network.genesis)
    receipts = [Receipt(tx.id, True, "ok", "", {}) for tx in txs]
    tree = store.tree_after(writes)
    block = make_block(network, store.height + 1, prev, txs, receipts, tree.root, 1_700_000_000_000 + store.height + 1)
    store.commit_block(block, certify(network, block), receipts, writes, tree)
    return block
