"""What a replica needs from its node: the head, block building and block checking.

Checks come in two kinds, kept apart because only one may be remembered:
`check_block` depends on the block and the chain alone, so its verdict holds
for good; `check_time` depends on this node's clock, so a refusal may turn
into an acceptance a moment later and is asked again rather than cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledger.block import Block, CommitCertificate
from ledger.membership import ValidatorSet
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
        """Validate a proposal and re-execute it on a scratch view comparing roots; None if valid, else why not.

        The verdict must not depend on the local clock (that is `check_time`): the replica caches it.
        """
        ...

    def check_time(self, block: Block) -> int:
        """0 if this node's clock accepts the block's timestamp now, else how many ms to wait before asking again."""
        ...

    def head_certificate(self) -> CommitCertificate | None:
        """The stored commit certificate of the head block (None at genesis)."""
        ...

    def validators(self, height: int) -> ValidatorSet:
        """The validator set that certifies block `height`: exact for heights up to the head's next one (it
        follows from the committed state), and as scheduled by the head's state for heights beyond."""
        ...
