"""The executor: runs blocks through the contracts on scratch views and commits them.

The primary builds a block by executing its batch on a scratch view over the
committed state; every replica re-executes a proposal the same way before it
votes and compares the roots with the header. Before the contracts, the
validity window and replay record of every tx are checked and written
(`ledger.replay`), so a replayed or expired tx makes its block invalid. The scratch result (state
writes, receipts, accumulator) is kept by block hash, so the commit that
follows a check writes it without executing the block a third time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts import ContractSet
from contracts.context import BlockContext
from ledger.block import (
    Block,
    BlockHeader,
    CommitCertificate,
    Receipt,
    check_block_place,
    compute_receipts_root,
    compute_tx_root,
    genesis_hash,
)
from ledger.commitment import ReadNode, TreeUpdate, update_tree
from ledger.errors import InvalidBlock
from ledger.genesis import Genesis
from ledger.membership import MEMBERSHIP_KEY, Membership, ValidatorSet, decode_membership
from ledger.replay import process_tx_windows
from ledger.state import StateReader, StateView
from ledger.store import Store
from ledger.tx import Tx
from node.analytics import compute_analytics_writes
from node.backlog import compute_backlog_writes
from node.changes import BlockChanges
from node.feed import compute_feed_writes
from node.finance import compute_finance_writes
from node.indexes import compute_index_writes
from node.lots import compute_lot_writes
from node.lowstock import compute_low_stock_writes


@dataclass(frozen=True)
class Execution:
    """What executing one block on a scratch view produced."""

    receipts: list[Receipt]
    writes: dict[bytes, bytes | None]
    tree: TreeUpdate
    """The state tree's change by `writes`: the new state root and the nodes to store."""
    validators_hash: bytes
    """The header's `validators_hash`: the hash of the validator set that begins at the next height, if one does."""

    @property
    def state_root(self) -> bytes:
        return self.tree.root


class Executor:
    """Executes and commits blocks against one node's store."""

    def __init__(self, store: Store, contracts: ContractSet, genesis: Genesis) -> None:
        self.store = store
        self.contracts = contracts
        self.genesis = genesis
        self._scratch: dict[bytes, Execution] = {}

    def head(self) -> tuple[int, bytes]:
        head = self.store.head()
        if head is None:
            return 0, genesis_hash(self.genesis)
        return head.height, head.block_hash

    def execute(self, height: int, time_ms: int, txs: Sequence[Tx]) -> Execution:
        """Run `txs` as block `height` on a scratch view of the committed state."""
        return execute_txs(self.contracts, self.genesis, self.store, self.store.get_node, height, time_ms, txs)

    def build_block(self, height: int, view: int, proposer: str, time_ms: int, txs: Sequence[Tx]) -> Block:
        """Execute `txs` and wrap them in a header carrying the results' roots."""
        parent_height, parent_hash = self.head()
        if height != parent_height + 1:
            raise InvalidBlock(f"cannot build block {height} on top of height {parent_height}")
        txs = tuple(txs)
        execution = self.execute(height, time_ms, txs)
        header = BlockHeader(
            chain_id=self.genesis.chain_id,
            height=height,
            prev_hash=parent_hash,
            timestamp_ms=time_ms,
            view=view,
            proposer=proposer,
            tx_root=compute_tx_root(txs),
            state_root=execution.state_root,
            receipts_root=compute_receipts_root(execution.receipts),
            validators_hash=execution.validators_hash,
        )
        block = Block(header, txs)
        self._scratch[block.hash()] = execution
        return block

    def check_block(self, block: Block) -> None:
        """Re-execute a proposal and raise `InvalidBlock` unless every root matches its header."""
        header = block.header
        parent_height, parent_hash = self.head()
        check_block_place(block, self.genesis.chain_id, parent_height + 1, parent_hash)
        execution = self.execute(header.height, header.timestamp_ms, block.txs)
        if execution.state_root != header.state_root:
            raise InvalidBlock(f"block {header.height}: state root does not match re-execution")
        if compute_receipts_root(execution.receipts) != header.receipts_root:
            raise InvalidBlock(f"block {header.height}: receipts root does not match re-execution")
        if execution.validators_hash != header.validators_hash:
            raise InvalidBlock(f"block {header.height}: validators hash does not match re-execution")
        self._scratch[block.hash()] = execution

    def get_membership(self) -> Membership:
        """The membership in force in the committed state."""
        return decode_membership(self.store.get_state(MEMBERSHIP_KEY.encode()), self.genesis)

    def get_validators(self, height: int) -> ValidatorSet:
        """The set that certifies block `height`: exact up to the head's next height, as scheduled beyond it."""
        return self.get_membership().validator_set(height)

    def commit(self, block: Block, certificate: CommitCertificate, sync: bool = True) -> list[Receipt]:
        """Write a decided block with its certificate and results in one atomic batch, with the change feed's
        events, the list indexes, the lot index, the money per day and the analytics totals derived from what it
        changed; with `sync` False, not waiting for the disk (`Store.commit_block`)."""
        execution = self._scratch.pop(block.hash(), None)
        if execution is None:
            self.check_block(block)
            execution = self._scratch.pop(block.hash())
        changes = BlockChanges(self.store, block, execution.writes)
        derived = compute_derived_writes(changes, execution.receipts, self.genesis)
        self.store.commit_block(
            block, certificate, execution.receipts, execution.writes, execution.tree, derived, sync=sync
        )
        self._scratch.clear()
        return execution.receipts


def compute_derived_writes(
    changes: BlockChanges, receipts: Sequence[Receipt], genesis: Genesis
) -> dict[bytes, bytes | None]:
    """Everything a node derives for its readers from a block (`changes`, its txs' `receipts`): the change
    feed, the order lists, the money per day, the lot index, the backlog, the stock below safety and the
    analytics totals."""
    return {
        **compute_feed_writes(changes, receipts, genesis),
        **compute_index_writes(changes),
        **compute_finance_writes(changes),
        **compute_lot_writes(changes),
        **compute_backlog_writes(changes),
        **compute_low_stock_writes(changes),
        **compute_analytics_writes(changes),
    }


def execute_txs(
    contracts: ContractSet,
    genesis: Genesis,
    base: StateReader,
    read_node: ReadNode,
    height: int,
    time_ms: int,
    txs: Sequence[Tx],
) -> Execution:
    """Run `txs` as block `height` over `base` (whose state tree `read_node` reads) without changing either.

    Raises `InvalidBlock` if a tx is outside its validity window or already committed (`ledger.replay`)."""
    view = StateView(base)
    process_tx_windows(view, height, txs)
    receipts = contracts.execute_block(view, txs, BlockContext(height, time_ms, genesis))
    writes = view.writes()
    membership = decode_membership(view.get_raw(MEMBERSHIP_KEY.encode()), genesis)
    return Execution(receipts, writes, update_tree(read_node, writes), membership.next_set_hash(height))


Clock = Callable[[], int]
"""Milliseconds since the epoch (the node's wall clock, or a fake one in tests)."""
