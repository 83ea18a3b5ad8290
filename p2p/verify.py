"""What a syncing node checks before it trusts a block from a peer.

A block served by a peer is trusted only if it is for our chain, its tx root
matches its txs, and its commit certificate holds a quorum of good signatures
over its hash from the validator set that certifies its height (the genesis
set unless a set change says otherwise, see `ledger.membership`). Block sync also checks that it is
the next height and links to our head by `prev_hash`; state sync checks the
snapshot entries against its state root.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ledger.block import Block, CommitCertificate, check_block_place, compute_tx_root, verify_certificate
from ledger.errors import InvalidBlock
from ledger.genesis import Genesis
from ledger.membership import ValidatorSet

Progress = Callable[[int, int], None]
"""Progress hook: (done, total) - heights for block sync, chunks for state sync."""


def verify_certified_block(
    genesis: Genesis, block: Block, certificate: CommitCertificate, validators: ValidatorSet | None = None
) -> None:
    """Raise `InvalidBlock` / `InvalidCertificate` unless `block` is a block of our chain certified by
    `validators` (the genesis set when None)."""
    header = block.header
    if header.chain_id != genesis.chain_id:
        raise InvalidBlock(f"block {header.height} is for chain {header.chain_id!r}")
    if header.tx_root != compute_tx_root(block.txs):
        raise InvalidBlock(f"block {header.height} tx root does not match its txs")
    verify_certificate(certificate, genesis, block.hash(), header.height, validators)


def verify_block(
    genesis: Genesis,
    block: Block,
    certificate: CommitCertificate,
    height: int,
    prev_hash: bytes,
    validators: ValidatorSet | None = None,
) -> None:
    """Raise `InvalidBlock` / `InvalidCertificate` unless `block` is block `height` after `prev_hash`, certified by
    `validators` (the set of that height; the genesis set when None)."""
    check_block_place(block, genesis.chain_id, height, prev_hash)
    verify_certificate(certificate, genesis, block.hash(), height, validators)


async def call_hook(result: Awaitable[None] | None) -> None:
    """Await a hook's result if it is awaitable (the node's hooks may be sync or async)."""
    if inspect.isawaitable(result):
        await result
