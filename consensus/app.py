"""What a replica needs from its node: the head, block building and block checking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledger.block import Block
from ledger.tx import Tx


class Application(Protocol):
    """What a replica needs from its node; the node implements it over its store and executor."""

    def head(self) -> tuple[int, bytes]:
        """(height, block hash) of the last committed block; (0, genesis_hash) before block 1."""
        ...

    def build_block(self, height: int, view: int, txs: Sequence[Tx]) -> Block:
        """Primary only: execute `txs` on a scratch view and return a full block.

        The node sets the timestamp, proposer and roots, and may drop invalid txs. It may return a
        block with no txs only if asked with no txs.
        """
        ...

    def check_block(self, block: Block) -> str | None:
        """Validate a proposal and re-execute it on a scratch view comparing roots; None if valid, else why not."""
        ...
