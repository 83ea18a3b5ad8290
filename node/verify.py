"""Re-checking a node's whole chain from genesis, as an auditor would.

For every height: the block decodes, links to its parent's hash, is indexed
under its own hash, carries valid tx signatures from members, matches its tx
root, and has a commit certificate with a quorum of validator signatures.
Then its txs are executed again over a state rebuilt from genesis, and the
recomputed state commitment, receipts root and stored receipts must match.
At the end the stored world state must equal the replayed one entry by
entry. The first failure is reported with its height and what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from contracts import ContractSet
from ledger.block import Block, compute_receipts_root, genesis_hash
from ledger.commitment import StateAccumulator
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.state import MemoryState
from ledger.store import Store
from node.executor import execute_txs
from p2p.verify import verify_block


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
    """Blocks checked."""
    txs: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _check_block(store: Store, genesis: Genesis, height: int, prev_hash: bytes) -> Block:
    raw = store.get_block_bytes(height)
    if raw is None:
        raise LedgerError("block is missing")
    block = Block.from_wire(decode(raw))
    certificate = store.get_certificate(height)
    if certificate is None:
        raise LedgerError("commit certificate is missing")
    verify_block(genesis, block, certificate, height, prev_hash)
    if store.get_height_by_hash(block.hash()) != height:
        raise LedgerError("block hash index does not point at this height")
    for tx in block.txs:
        identity = genesis.identity(tx.signer)
        if identity is None:
            raise LedgerError(f"tx {tx.id.hex()} is signed by non-member {tx.signer!r}")
        try:
            tx.verify_signature(identity.public_key)
        except LedgerError as exc:
            raise LedgerError(f"tx {tx.id.hex()}: {exc}") from exc
    return block


def verify_chain(
    store: Store, genesis: Genesis, contracts: ContractSet, progress: Callable[[int], None] | None = None
) -> Report:
    """Check every block and the final state; stops at the first broken block."""
    report = Report()
    state = MemoryState()
    acc = StateAccumulator()
    prev_hash = genesis_hash(genesis)
    top = store.height
    for height in range(1, top + 1):
        try:
            block = _check_block(store, genesis, height, prev_hash)
            execution = execute_txs(contracts, genesis, state, acc, height, block.header.timestamp_ms, block.txs)
            if execution.state_root != block.header.state_root:
                raise LedgerError("state commitment does not match re-execution of the txs")
            if compute_receipts_root(execution.receipts) != block.header.receipts_root:
                raise LedgerError("receipts root does not match re-execution of the txs")
            for index, receipt in enumerate(execution.receipts):
                if store.get_receipt(height, index) != receipt:
                    raise LedgerError(f"stored receipt {index} differs from re-execution")
        except LedgerError as exc:
            report.failures.append(Failure(height, str(exc)))
            return report
        for key, value in execution.writes.items():
            if value is None:
                state.entries.pop(key, None)
            else:
                state.entries[key] = value
        acc = execution.accumulator
        prev_hash = block.hash()
        report.height = height
        report.txs += len(block.txs)
        if progress is not None:
            progress(height)
    report.failures.extend(_compare_state(store.iter_state(), state.entries))
    return report


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
