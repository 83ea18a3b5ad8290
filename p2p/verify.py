"""What a syncing node checks before it trusts a block from a peer.

A block served by a peer is trusted only if it is for our chain, its tx root
matches its txs, and its commit certificate holds a quorum of good signatures
from the genesis validators over its hash. Block sync also checks that it is
the next height and links to our head by `prev_hash`; state sync checks the
snapshot entries against its state root.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ledger.block import Block, CommitCertificate, check_block_place, compute_tx_root, verify_certificate
from ledger.errors import InvalidBlock
from ledger.genesis import Genesis

Progress = Callable[[int, int], None]
"""Progress hook: (done, total) - heights for block sync, chunks for state sync."""


def verify_certified_block(genesis: Genesis, block: Block, certificate: CommitCertificate) -> None:
    """Raise `InvalidBlock` / `InvalidCertificate` unless `block` is a certified block of our chain."""
    header = block.header
    if header.chain_id != genesis.chain_id:
        raise InvalidBlock(f"block {header.height} is for chain {header.chain_id!r}")
    if header.tx_root != compute_tx_root(block.txs):
        raise InvalidBlock(f"block {header.height} tx root does not match its txs")
    verify_certificate(certificate, genesis, block.hash(), header.height)


def verify_block(genesis: Genesis, block: Block, certificate: CommitCertificate, height: int, prev_hash: bytes) -> None:
    """Raise `InvalidBlock` / `InvalidCertificate` unless `block` is the certified block `height` after `prev_hash`."""
    check_block_place(block, genesis.chain_id, height, prev_hash)
    verify_certificate(certificate, genesis, block.hash(), height)


async def call_hook(result: Awaitable[None] | None) -> None:
    """Await a hook's result if it is awaitable (the node's hooks may be sync or async)."""
    if inspect.isawaitable(result):
        await result
