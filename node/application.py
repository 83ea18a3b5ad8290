"""The node's side of the consensus interface: build, check and apply blocks.

It wraps the executor with what only a node has: a clock for block
timestamps, and admission, so that every tx in a proposal is a tx this
node would have admitted itself (verified once; a tx already verified on
arrival is not verified again; the executor refuses expired and already
committed txs).

Block time: a timestamp must be after its parent's (a fact of the chain,
checked with the block), and within `max_clock_skew_ms` of this node's clock
either way (a fact of this moment, checked by `check_time` and never
cached). Ahead of the clock, the replica waits and asks again; behind it, a
primary is freezing time, which the replica refuses until the view changes.
So every honest replica's clock bounds the ledger's time from both sides and
no primary can stop unpaid orders from timing out.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.block import Block, CommitCertificate
from ledger.errors import LedgerError
from ledger.membership import ValidatorSet
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

    def validators(self, height: int) -> ValidatorSet:
        return self.executor.get_validators(height)

    def head_certificate(self) -> CommitCertificate | None:
        height = self.executor.head()[0]
        return self.executor.store.get_certificate(height) if height else None

    def check_time(self, block: Block) -> int:
        skew = self.executor.genesis.consensus.max_clock_skew_ms
        now = self.clock()
        stamp = block.header.timestamp_ms
        if stamp > now + skew:
            return stamp - now - skew
        if stamp < now - skew:
            return skew
        return 0

    def check_block(self, block: Block) -> str | None:
        header = block.header
        if header.timestamp_ms <= self._parent_time():
            return f"block {header.height}: timestamp is not after its parent's"
        try:
            for tx in block.txs:
                self.admission.verify(tx)
            self.executor.check_block(block)
        except LedgerError as exc:
            return str(exc)
        return None
