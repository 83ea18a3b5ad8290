"""The censorship watch: a tx the primary could have proposed and did not is forwarded to it, then blamed on it.

Each node's mempool is a FIFO of its own: gossip arrives in different
orders, and a full pool refuses a peer's tx. So the primary may not hold a
tx this node holds, and a primary with a backlog fills its blocks with txs
older than it. Neither is censorship. The watch counts, for the mempool's
oldest tx, only the committed blocks that passed it over while they had room
by the measure proposals are filled by (`ledger.block.has_room`: the work of
their txs, a tx's size in `WORK_UNIT_BYTES`, left room for the largest tx
there may be, and their bytes too). A proposal takes the primary's oldest
txs while the next one fits, so such a block was cut by the primary's pool
running dry, not by its backlog: the primary did not hold the tx, or left it
out.

As BFT-SMaRt does, the first timeout on a tx (`STUCK_AFTER_BLOCKS` such
blocks) forwards it to the primary (`FORWARD`): a primary that lacked it
proposes it next. Only a second timeout on the same tx suspects the primary
(`SUSPECT`): the driver checks the tx is still admissible and has the
replica send a TIMEOUT, which changes the view only when f+1 replicas send
one, so one node's view of its own pool changes nothing alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ledger.block import Block, has_room
from ledger.genesis import ConsensusParams
from ledger.tx import MAX_TX_BYTES, Tx
from node.mempool import Dropped, Mempool

STUCK_AFTER_BLOCKS = 16
"""Blocks with room that may pass over the mempool's oldest tx before a timeout on it (the node re-offers it to
the peers after half as many)."""

Verdict = Literal["forward", "suspect"]
"""What a timeout on the oldest tx asks: forward it to the primary (the first), or suspect the primary (later)."""

FORWARD: Verdict = "forward"
SUSPECT: Verdict = "suspect"


class CensorshipWatch:
    """Follows the mempool's oldest tx across commits and says when to forward it and when to suspect."""

    def __init__(
        self, params: ConsensusParams, largest_tx_bytes: int = MAX_TX_BYTES, stuck_after: int = STUCK_AFTER_BLOCKS
    ) -> None:
        self.params = params
        self.largest_tx_bytes = largest_tx_bytes
        """The largest tx a block may be asked to hold (`MAX_TX_BYTES` on a node)."""
        self.stuck_after = stuck_after
        self._tx_id: bytes | None = None
        """The oldest tx being watched."""
        self._passed_over = 0
        """Blocks with room that passed it over since its last timeout (or since it became the oldest)."""
        self._forwarded = False
        """Was it forwarded to the primary already (its next timeout suspects)?"""

    def had_room(self, block: Block) -> bool:
        return has_room(block, self.params, self.largest_tx_bytes)

    def check(self, block: Block, mempool: Mempool, is_admissible: Callable[[Tx], bool]) -> tuple[Verdict, Tx] | None:
        """`block` was committed (and its txs left `mempool`): a timeout's verdict on the mempool's oldest tx, with
        that tx, or None. A tx that `is_admissible` no longer is, is dropped from the pool, not blamed on anyone."""
        oldest = mempool.oldest()
        verdict = self.on_commit(block, oldest)
        if verdict is None or oldest is None:
            return None
        if not is_admissible(oldest):
            mempool.drop(oldest.id, Dropped.INADMISSIBLE)
            return None
        return verdict, oldest

    def on_commit(self, block: Block, oldest: Tx | None) -> Verdict | None:
        """`block` was committed and `oldest` is now the mempool's oldest tx: a timeout's verdict, or None."""
        if oldest is None or oldest.id != self._tx_id:
            self._tx_id, self._passed_over, self._forwarded = (None if oldest is None else oldest.id), 0, False
            return None
        if not self.had_room(block):
            return None
        self._passed_over += 1
        if self._passed_over < self.stuck_after:
            return None
        self._passed_over = 0
        if self._forwarded:
            return SUSPECT
        self._forwarded = True
        return FORWARD
