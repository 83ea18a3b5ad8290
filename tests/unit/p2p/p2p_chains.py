"""Certified chains for the sync tests: real blocks, real txs, certificates signed by the validators."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.block import Block, BlockHeader, CommitCertificate, commit_sign_bytes, compute_tx_root, genesis_hash
from ledger.encoding import sha256
from ledger.merkle import EMPTY_ROOT
from ledger.tx import Tx
from p2p.sync import SyncedBlock
from tests.helpers.builders import Network

QUORUM_SIGNERS = ("node-0", "node-1", "node-2")
"""Three of four validators: a quorum when n = 4."""


def certify(net: Network, block: Block, signers: Sequence[str] = QUORUM_SIGNERS, view: int = 0) -> CommitCertificate:
    """A commit certificate for `block` signed by `signers` over `commit_sign_bytes`."""
    message = commit_sign_bytes(net.genesis.chain_id, block.height, view, block.hash())
    signatures = tuple(sorted((v, net.keys[v].sign(message)) for v in signers))
    return CommitCertificate(block.height, view, block.hash(), signatures)


def make_block(
    net: Network, height: int, prev_hash: bytes, txs: Sequence[Tx], state_root: bytes | None = None
) -> Block:
    header = BlockHeader(
        chain_id=net.genesis.chain_id,
        height=height,
        prev_hash=prev_hash,
        timestamp_ms=net.genesis.genesis_time_ms + height * 1000,
        view=0,
        proposer=net.genesis.validator_ids()[height % net.genesis.n],
        tx_root=compute_tx_root(txs),
        state_root=state_root if state_root is not None else sha256(b"state %d" % height),
        receipts_root=EMPTY_ROOT,
    )
    return Block(header, tuple(txs))


def build_chain(net: Network, count: int, txs_per_block: int = 2) -> list[SyncedBlock]:
    """`count` certified blocks from genesis, each with `txs_per_block` signed order txs."""
    chain: list[SyncedBlock] = []
    prev = genesis_hash(net.genesis)
    for height in range(1, count + 1):
        txs = [net.tx("channel-1", "order.create", {"ref": f"R-{height}-{i}"}) for i in range(txs_per_block)]
        block = make_block(net, height, prev, txs)
        chain.append((block, certify(net, block)))
        prev = block.hash()
    return chain
