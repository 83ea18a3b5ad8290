"""The node's side of the consensus interface: build, check and apply blocks.

It wraps the executor with what only a node has: a clock for block
timestamps (monotonic over the parent, and bounded ahead of the local clock
when checking), and admission, so that every tx in a proposal is a tx this
node would have admitted itself (verified once; a tx already verified on
arrival is not verified again; the executor refuses already committed txs).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.block import Block
from ledger.errors import LedgerError
from ledger.tx import Tx
from node.admission import Admission
from node.executor import Clock, Executor


class NodeApplication:
    """Implements `consensus.app.Application` over a node's executor."""

    def __init__(self, executor: Executor, admission: Admission, node_id: str, clock: Clock) -> None:
        self.executor = executor
        self.admission = admission
        self.node_id = node_id
        self.clock = clock

    def head(self) -> tuple[int, bytes]:
        return self.executor.head()

    def _parent_time(self) -> int:
        head = self.executor.store.head()
        return head.timestamp_ms if head else self.executor.genesis.genesis_time_ms

    def build_block(self, height: int, view: int, txs: Sequence[Tx]) -> Block:
        valid = []
        for tx in txs:
            try:
                self.admission.check(tx)
            except LedgerError:
                continue
            valid.append(tx)
        time_ms = max(self.clock(), self._parent_time() + 1)
        return self.executor.build_block(height, view, self.node_id, time_ms, valid)

    def check_block(self, block: Block) -> str | None:
        header = block.header
        if header.timestamp_ms <= self._parent_time():
            return f"block {header.height}: timestamp is not after its parent's"
        skew = self.executor.genesis.consensus.max_clock_skew_ms
        if header.timestamp_ms > self.clock() + skew:
            return f"block {header.height}: timestamp is more than {skew} ms ahead of this node's clock"
        try:
            for tx in block.txs:
                self.admission.verify(tx)
            self.executor.check_block(block)
        except LedgerError as exc:
            return str(exc)
        return None
