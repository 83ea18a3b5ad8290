"""Re-checking a node's chain, as an auditor with only the genesis file would.

Every block the store holds, from the lowest to the head, must decode, link
to its parent's hash, be indexed under its own hash, carry valid tx
signatures from members, match its tx root, and have a commit certificate
with a quorum of signatures of the validator set in force at its height
(genesis's until governance changed it, `ledger.membership`); the last block
before each set change must carry that set's hash in its header. What else is
checked depends on where the store's history starts:

- **Full history** (blocks from height 1): the txs are executed again over a
  state rebuilt from genesis, and the recomputed state commitment, receipts
  root, validators hash and stored receipts must match each block; the set
  of each height comes from the replayed state. At the end the stored
  world state must equal the replayed one entry by entry.
- **State-synced** (lowest block B > 1): the node loaded its world state from
  a snapshot at block B and holds no blocks, and so no state, below B. Block
  B's own `prev_hash` is taken as given: its commit certificate, checked
  against the keys of the set of its height, is the trust anchor. The sets
  come from the stored membership, which keeps every epoch; a tx signed by an
  identity revoked since is taken on the strength of its block's certificate. No tx can be
  re-executed without the state before it, so instead each block above B
  must have its stored receipts, matching its receipts root, and the
  commitment of the whole stored world state, recomputed from scratch, must
  equal the state root certified in the head block.

The first broken block is reported with its height and what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from contracts import ContractSet
from ledger.block import Block, Receipt, compute_receipts_root, genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.membership import MEMBERSHIP_KEY, Membership, decode_membership
from ledger.state import MemoryState
from ledger.store import Store
from node.executor import execute_txs
from node.snapshots import find_base_height
from p2p.verify import verify_block

BlockCheck = Callable[[int, Block], None]
"""What is checked of a block after `_check_block`, by mode; raises `LedgerError` on a mismatch."""

MembershipAt = Callable[[int], Membership]
"""The membership a block at a height is checked against, by mode."""


@dataclass(frozen=True)
class Failure:
    """One thing that did not check out."""

    height: int
    """Block height, or 0 for the world state after the last block."""
    what: str


@dataclass
class Report:
    """What `verify_chain` found."""

    height: int = 0
    """Height of the last block that checked out (the number of blocks checked when replaying from genesis)."""
    txs: int = 0
    """Txs in the blocks that checked out."""
    base_height: int = 1
    """Lowest block checked: 1 for a full history, the snapshot height for a state-synced store."""
    re_executed: bool = True
    """Whether the txs were executed again (full history) or only their stored receipts checked (state-synced)."""
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_chain(
    store: Store, genesis: Genesis, contracts: ContractSet, progress: Callable[[int], None] | None = None
) -> Report:
    """Check every block held and the final state; stops at the first broken block."""
    base = find_base_height(store)
    if base > 1:
        return _verify_from_snapshot(store, genesis, base, progress)
    return _verify_from_genesis(store, genesis, contracts, progress)


def _verify_from_genesis(
    store: Store, genesis: Genesis, contracts: ContractSet, progress: Callable[[int], None] | None
) -> Report:
    report = Report()
    replay = _Replay(store, genesis, contracts)
    _check_blocks(store, genesis, report, genesis_hash(genesis), replay.process_block, replay.membership, progress)
    if report.ok:
        report.failures.extend(_compare_state(store.iter_state(), replay.state.entries))
    return report


def _verify_from_snapshot(store: Store, genesis: Genesis, base: int, progress: Callable[[int], None] | None) -> Report:
    report = Report(base_height=base, re_executed=False)
    membership = decode_membership(store.get_state(MEMBERSHIP_KEY.encode()), genesis)

    def check_receipts(height: int, block: Block) -> None:
        if block.header.validators_hash != membership.next_set_hash(height):
            raise LedgerError("validators hash does not match the set changes of the stored membership")
        if height > base:  # state sync stores no receipts for the snapshot block itself
            _check_stored_receipts(store, height, block)

    head = _check_blocks(store, genesis, report, None, check_receipts, lambda height: membership, progress)
    if head is not None and compute_commitment(store.iter_state()) != head.header.state_root:
        report.failures.append(
            Failure(0, f"state commitment of the stored world state does not match block {head.height}'s state root")
        )
    return report


def _check_blocks(
    store: Store,
    genesis: Genesis,
    report: Report,
    prev_hash: bytes | None,
    check: BlockCheck,
    membership: MembershipAt,
    progress: Callable[[int], None] | None,
) -> Block | None:
    """Check blocks `report.base_height`..head in order, recording the first failure in `report`.

    Returns the head block, or None when a block failed or the store holds none.
    """
    block = None
    for height in range(report.base_height, store.height + 1):
        try:
            block = _check_block(store, genesis, membership(height), height, prev_hash, report.re_executed)
            check(height, block)
        except LedgerError as exc:
            report.failures.append(Failure(height, str(exc)))
            return None
        prev_hash = block.hash()
        report.height = height
        report.txs += len(block.txs)
        if progress is not None:
            progress(height)
    return block


def _check_block(
    store: Store, genesis: Genesis, membership: Membership, height: int, prev_hash: bytes | None, exact: bool
) -> Block:
    """The stored block `height`, checked against its certificate (by the set `membership` has at that height),
    its index and its signers. `exact`: `membership` is the one in force at `height`, so every signer must be in
    it (else it is a later one, from which a revoked signer is gone).

    `prev_hash` None takes the block's own parent link as given (the trust anchor of a state-synced store).
    """
    raw = store.get_block_bytes(height)
    if raw is None:
        raise LedgerError("block is missing")
    block = Block.from_wire(decode(raw))
    certificate = store.get_certificate(height)
    if certificate is None:
        raise LedgerError("commit certificate is missing")
    parent = block.header.prev_hash if prev_hash is None else prev_hash
    verify_block(genesis, block, certificate, height, parent, membership.validator_set(height))
    if store.get_height_by_hash(block.hash()) != height:
        raise LedgerError("block hash index does not point at this height")
    for tx in block.txs:
        identity = membership.identity(tx.signer, height)
        if identity is None:
            if exact:
                raise LedgerError(f"tx {tx.id.hex()} is signed by non-member {tx.signer!r}")
            continue
        try:
            tx.verify_signature(identity.public_key)
        except LedgerError as exc:
            raise LedgerError(f"tx {tx.id.hex()}: {exc}") from exc
    return block


class _Replay:
    """The world state rebuilt from genesis, one re-executed block at a time."""

    def __init__(self, store: Store, genesis: Genesis, contracts: ContractSet) -> None:
        self.store = store
        self.genesis = genesis
        self.contracts = contracts
        self.state = MemoryState()
        self.nodes: dict[bytes, bytes] = {}
        """The replayed state's tree (`ledger.commitment`), node record by place."""

    def membership(self, height: int) -> Membership:
        """The membership the replayed state holds (the state after the block before `height`)."""
        return decode_membership(self.state.get_state(MEMBERSHIP_KEY.encode()), self.genesis)

    def process_block(self, height: int, block: Block) -> None:
        """Re-execute `block`, compare its results with the header and the stored receipts, then apply it."""
        execution = execute_txs(
            self.contracts, self.genesis, self.state, self.nodes.get, height, block.header.timestamp_ms, block.txs
        )
        if execution.state_root != block.header.state_root:
            raise LedgerError("state commitment does not match re-execution of the txs")
        if compute_receipts_root(execution.receipts) != block.header.receipts_root:
            raise LedgerError("receipts root does not match re-execution of the txs")
        if execution.validators_hash != block.header.validators_hash:
            raise LedgerError("validators hash does not match re-execution of the txs")
        for index, receipt in enumerate(execution.receipts):
            if self.store.get_receipt(height, index) != receipt:
                raise LedgerError(f"stored receipt {index} differs from re-execution")
        for entries, writes in ((self.state.entries, execution.writes), (self.nodes, execution.tree.nodes)):
            for key, value in writes.items():
                if value is None:
                    entries.pop(key, None)
                else:
                    entries[key] = value


def _check_stored_receipts(store: Store, height: int, block: Block) -> None:
    receipts: list[Receipt] = []
    for index in range(len(block.txs)):
        receipt = store.get_receipt(height, index)
        if receipt is None:
            raise LedgerError(f"stored receipt {index} is missing")
        receipts.append(receipt)
    if compute_receipts_root(receipts) != block.header.receipts_root:
        raise LedgerError("stored receipts do not match the block's receipts root")


def _compare_state(stored: Iterator[tuple[bytes, bytes]], replayed: dict[bytes, bytes]) -> list[Failure]:
    failures = []
    seen = set()
    for key, value in stored:
        seen.add(key)
        expected = replayed.get(key)
        if expected is None:
            failures.append(Failure(0, f"state entry {key!r} is in the store but not in the replayed state"))
        elif expected != value:
            failures.append(Failure(0, f"state entry {key!r} differs from the replayed state"))
    for key in sorted(set(replayed) - seen):
        failures.append(Failure(0, f"state entry {key!r} is missing from the store"))
    return failures
