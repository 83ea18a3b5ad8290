"""An in-memory `Application` for consensus tests: blocks of `kv.set` txs over a dict.

A `kv.validators` tx (payload {"ids": [...]}, ids among the app's `candidates`)
changes the validator set as governance does on a node: the new set certifies
the blocks from the height after the next checkpoint boundary
(`compute_epoch_start`), the schedule is part of the state root, and the last
block before the change carries the new set's hash in its header.

Deterministic by construction: the state is a dict of str -> int, its root is
the hash of its sorted items. Each app reads its own node's clock, as a node
does (`node.application`): the proposer stamps a block with its clock (at
least its parent's time plus one), and `check_time` accepts a timestamp only
within `max_clock_skew_ms` of this node's clock either way. It checks what a
node checks (chain id, height, parent hash, timestamp after the parent's,
proposer, tx root, tx signatures, no tx twice on the chain, state and
receipts roots after re-execution), and it keeps every committed block with
its certificate so that a lagging replica can sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ledger.block import (
    Block,
    BlockHeader,
    CommitCertificate,
    Receipt,
    compute_receipts_root,
    compute_tx_root,
    genesis_hash,
    verify_certificate,
)
from ledger.encoding import hash_value
from ledger.genesis import Genesis, Identity
from ledger.membership import ValidatorSet, compute_epoch_start
from ledger.tx import Tx

SET_KIND = "kv.set"
"""Set a key: payload {"key": str, "value": int}."""

VALIDATORS_KIND = "kv.validators"
"""Change the validator set: payload {"ids": [str, ...]}, in order."""

Schedule = tuple[tuple[int, tuple[str, ...]], ...]
"""Validator set epochs: (first height, validator ids), the first from height 1."""


@dataclass
class Execution:
    """The result of running txs on top of a state."""

    state: dict[str, int]
    schedule: Schedule
    receipts: list[Receipt]

    @property
    def state_root(self) -> bytes:
        return hash_value([sorted(self.state.items()), [[start, list(ids)] for start, ids in self.schedule]])


def execute(state: dict[str, int], schedule: Schedule, txs: Sequence[Tx], height: int, interval: int) -> Execution:
    after = dict(state)
    receipts = []
    for tx in txs:
        if tx.kind == VALIDATORS_KIND:
            start = compute_epoch_start(height, interval)
            kept = schedule[:-1] if schedule[-1][0] == start else schedule
            schedule = (*kept, (start, tuple(tx.payload["ids"])))
        else:
            after[str(tx.payload["key"])] = int(tx.payload["value"])
        receipts.append(Receipt(tx.id, True, "ok", "", {}))
    return Execution(after, schedule, receipts)


@dataclass
class MemoryApp:
    """A validator's chain and state, held in memory."""

    genesis: Genesis
    node_id: str
    clock: Callable[[], int] | None = None
    """Milliseconds; block timestamps are at least this. None: a clock that reads the head's timestamp."""
    verify_tx_signatures: bool = True
    blocks: list[Block] = field(default_factory=list)
    certificates: list[CommitCertificate] = field(default_factory=list)
    state: dict[str, int] = field(default_factory=dict)
    committed_ids: set[bytes] = field(default_factory=set)
    candidates: dict[str, Identity] = field(default_factory=dict)
    """Who a `kv.validators` tx may name (besides the genesis validators)."""
    schedule: Schedule = ()

    def __post_init__(self) -> None:
        self.candidates = {**{v.id: v for v in self.genesis.validators}, **self.candidates}
        if not self.schedule:
            self.schedule = ((1, tuple(self.genesis.validator_ids())),)

    def validators(self, height: int) -> ValidatorSet:
        ids = self.schedule[0][1]
        for start, later in self.schedule[1:]:
            if start <= height:
                ids = later
        return ValidatorSet(tuple(self.candidates[i] for i in ids))

    def _execute(self, txs: Sequence[Tx], height: int) -> Execution:
        return execute(self.state, self.schedule, txs, height, self.genesis.consensus.checkpoint_interval)

    def _next_set_hash(self, execution: Execution, height: int) -> bytes:
        for start, ids in execution.schedule:
            if start == height + 1:
                return ValidatorSet(tuple(self.candidates[i] for i in ids)).hash()
        return b""

    def head(self) -> tuple[int, bytes]:
        if not self.blocks:
            return 0, genesis_hash(self.genesis)
        return len(self.blocks), self.blocks[-1].hash()

    def now(self) -> int:
        return self._parent_time() if self.clock is None else self.clock()

    def _parent_time(self) -> int:
        return self.blocks[-1].header.timestamp_ms if self.blocks else self.genesis.genesis_time_ms

    def is_admissible(self, tx: Tx) -> bool:
        """Would this node accept `tx` into the next block?"""
        signer = self.genesis.identity(tx.signer)
        if tx.chain_id != self.genesis.chain_id or tx.kind not in (SET_KIND, VALIDATORS_KIND) or signer is None:
            return False
        if tx.id in self.committed_ids:
            return False
        if tx.kind == VALIDATORS_KIND:
            ids = tx.payload.get("ids")
            if not isinstance(ids, list) or not ids or not set(ids) <= self.candidates.keys():
                return False
        elif not isinstance(tx.payload.get("key"), str) or not isinstance(tx.payload.get("value"), int):
            return False
        if self.verify_tx_signatures:
            try:
                tx.verify_signature(signer.public_key)
            except Exception:
                return False
        return True

    def build_block(self, height: int, view: int, txs: Sequence[Tx]) -> Block:
        chosen: list[Tx] = []
        seen: set[bytes] = set()
        for tx in txs:
            if tx.id not in seen and self.is_admissible(tx):
                seen.add(tx.id)
                chosen.append(tx)
        return self.make_block(height, view, chosen)

    def make_block(self, height: int, view: int, txs: Sequence[Tx], time_offset: int = 0) -> Block:
        """The block these txs make on the head (no admission checks: tests use it to forge blocks)."""
        execution = self._execute(txs, height)
        header = BlockHeader(
            chain_id=self.genesis.chain_id,
            height=height,
            prev_hash=self.head()[1],
            timestamp_ms=max(self.now(), self._parent_time() + 1) + time_offset,
            view=view,
            proposer=self.node_id,
            tx_root=compute_tx_root(txs),
            state_root=execution.state_root,
            receipts_root=compute_receipts_root(execution.receipts),
            validators_hash=self._next_set_hash(execution, height),
        )
        return Block(header, tuple(txs))

    def check_block(self, block: Block) -> str | None:
        header = block.header
        height, head_hash = self.head()
        if header.chain_id != self.genesis.chain_id or header.height != height + 1 or header.prev_hash != head_hash:
            return "block does not extend the head"
        if header.timestamp_ms <= self._parent_time():
            return "timestamp not after the parent's"
        if header.proposer not in self.validators(header.height).keys:
            return "proposer is not a validator"
        if header.tx_root != compute_tx_root(block.txs):
            return "tx root mismatch"
        if len({tx.id for tx in block.txs}) != len(block.txs) or not all(self.is_admissible(t) for t in block.txs):
            return "inadmissible tx"
        execution = self._execute(block.txs, header.height)
        if header.state_root != execution.state_root:
            return "state root mismatch"
        if header.receipts_root != compute_receipts_root(execution.receipts):
            return "receipts root mismatch"
        if header.validators_hash != self._next_set_hash(execution, header.height):
            return "validators hash mismatch"
        return None

    def check_time(self, block: Block) -> int:
        """As a node does: the timestamp within the genesis skew of this validator's clock, either way."""
        skew = self.genesis.consensus.max_clock_skew_ms
        now, stamp = self.now(), block.header.timestamp_ms
        if stamp > now + skew:
            return stamp - now - skew
        return skew if stamp < now - skew else 0

    def head_certificate(self) -> CommitCertificate | None:
        return self.certificates[-1] if self.certificates else None

    def apply(self, block: Block, certificate: CommitCertificate, verify: bool = True) -> None:
        """Commit a decided or synced block; a block that does not extend the head is a broken invariant."""
        height, head_hash = self.head()
        if block.height != height + 1 or block.header.prev_hash != head_hash:
            raise RuntimeError(f"{self.node_id}: block {block.height} does not extend head {height}")
        if verify:
            verify_certificate(certificate, self.genesis, block.hash(), block.height, self.validators(block.height))
        execution = self._execute(block.txs, block.height)
        self.state, self.schedule = execution.state, execution.schedule
        self.committed_ids.update(tx.id for tx in block.txs)
        self.blocks.append(block)
        self.certificates.append(certificate)

    def sync_from(self, other: MemoryApp) -> int:
        """Copy the blocks `other` has beyond this head, checking each certificate; the new height."""
        while len(self.blocks) < len(other.blocks):
            index = len(self.blocks)
            self.apply(other.blocks[index], other.certificates[index])
        return len(self.blocks)
