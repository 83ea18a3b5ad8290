"""The consensus driver: the one ordered loop that feeds the replica and carries out its actions.

Every input of the replica (a peer's message, a timer, a batch offered by the
mempool, blocks applied by sync) is handled here, one at a time, on the
node's event loop. The replica answers with actions, which are carried out
in order, except that the records a stretch of actions asks to `Persist` are
fsynced to the consensus log together, before any other action of the
stretch (so nothing signed is sent before it is remembered, and a primary's
proposal and its own PREPARE cost one fsync, not two; a stretch ends at a
`Decide` or a `RequestSync`, which no record crosses), `Send`/`Broadcast` are
queued on the transport, `Decide` commits the block through the executor,
timers become loop callbacks (a view timeout that falls while the node is
syncing and its head is still moving waits: the lag is this node's, not the
primary's; a sync that moves nothing, such as one chasing a height that a
lying peer claims, holds no timeout back),
and `RequestSync` starts block sync. The wall time the loop spends in each
stage of a round (`stage_seconds`: the replica's proposing and voting, which
build and re-execute blocks, the consensus log's fsyncs and the commits) is
summed for `GET /metrics`, so a round's time can be split into work on this
node and waiting for its peers. After each commit the driver shows
the censorship watch (`node.censorship`) the block and the mempool's oldest
tx: at a timeout on that tx it is checked again (`recheck`; evicted if no
longer admissible) and, if still good, sent to the primary the first time
(over tx gossip) and reported to the replica as a sign of a censoring
primary the next (`Replica.on_stuck_tx`). Every `compact_every` committed blocks
(and after each sync) the consensus log is compacted to what the replica
still needs, so it stays bounded.

The driver fails stop: when the consensus log cannot be written or synced
(`LogWriteFailed`), the actions after the failed record are dropped and the
replica is fed nothing more (`halted` says why, and the node's status shows
it), so no message that was not persisted leaves, and no later one either.
The node keeps serving and syncing blocks; it votes again only after a
restart, which reads the log back and cuts the torn write off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from consensus.actions import Action, Broadcast, CancelTimer, Decide, Persist, RequestSync, Send, SetTimer
from consensus.messages import decode_message, encode_message
from consensus.replica import VIEW_TIMER, Replica
from ledger.block import Block, CommitCertificate, Receipt
from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.tx import Tx, encode_tx
from node.censorship import FORWARD, CensorshipWatch
from node.executor import Executor
from node.mempool import Mempool
from node.wal import ConsensusLog, LogWriteFailed
from p2p.gossip import TXS_KIND
from p2p.transport import Transport

log = logging.getLogger(__name__)

CONSENSUS_KIND = "consensus"
"""Envelope kind of consensus messages."""

SYNC_RECHECK_S = 1.0
"""While the node syncs, how long a view timeout waits before it looks again."""

CommitListener = Callable[[Block, list[Receipt]], None]

STAGES = ("propose", "vote", "log_sync", "commit")
"""Stages of a round timed on the loop: the replica taking a batch (the primary builds its block there), the
replica taking a peer's message (a proposal is re-executed there), the consensus log's write and fsync, and the
commit of a decided block with its listeners."""


class SyncDeferral:
    """A view timeout that falls while the node syncs and its head still moves waits `SYNC_RECHECK_S` and looks
    again: no progress is then this node's lag, not the primary's fault. A sync that moves nothing (one chasing a
    height a lying peer claims) holds no timeout back."""

    def __init__(self) -> None:
        self._deferred_at_height = -1
        """Head when a view timeout last waited: it waits again only if sync moved the head since."""

    def defers(self, timer: str, is_syncing: bool, height: int) -> bool:
        """Does timer `timer`, falling now at head `height`, wait?"""
        if timer == VIEW_TIMER and is_syncing and height > self._deferred_at_height:
            self._deferred_at_height = height
            return True
        self._deferred_at_height = -1
        return False


BARRIERS = (Decide, RequestSync)
"""Actions no persisted record moves across: a record after a decided block (or a sync) may speak of it."""


def carry_out(
    actions: Sequence[Action], write: Callable[[list[dict[str, Any]]], bool], perform: Callable[[Action], None]
) -> bool:
    """Carry out a replica's actions: each stretch up to a `BARRIERS` action has its `Persist` records written by
    one `write` (one fsync) before any of its other actions, which are then done in order, and the barrier after
    them. A record is thus always written before every action that follows it, and a message may wait for a
    record that follows it (a message whose record is kept but that never left is one lost on the way). The
    first write that fails (`write` answers False) ends it, and nothing of its stretch or after is done (False)."""
    stretch: list[Action] = []
    for action in [*actions, None]:
        if action is not None and not isinstance(action, BARRIERS):
            stretch.append(action)
            continue
        records = [done.record for done in stretch if isinstance(done, Persist)]
        if records and not write(records):
            return False
        for done in stretch:
            if not isinstance(done, Persist):
                perform(done)
        stretch = []
        if action is not None:
            perform(action)
    return True


class ConsensusDriver:
    """Feeds one replica and performs its actions."""

    def __init__(
        self,
        replica: Replica,
        wal: ConsensusLog,
        executor: Executor,
        mempool: Mempool,
        transport: Transport,
        max_block_txs: int,
        batch_wait_ms: int,
        request_sync: Callable[[int], None],
        compact_every: int = 100,
        is_syncing: Callable[[], bool] = lambda: False,
        recheck: Callable[[Tx], bool] = lambda tx: True,
    ) -> None:
        self.replica = replica
        self.wal = wal
        self.executor = executor
        self.mempool = mempool
        self.transport = transport
        self.max_block_txs = max_block_txs
        self.batch_wait_s = batch_wait_ms / 1000
        self.request_sync = request_sync
        self.is_syncing = is_syncing
        """True while the node applies blocks by sync: view timeouts wait until it is done."""
        self.recheck = recheck
        """Is a mempool tx still admissible? (Asked before a stuck tx is blamed on the primary.)"""
        self.compact_every = max(compact_every, 1)
        self.watch = CensorshipWatch(replica.genesis.consensus)
        """Says when the mempool's oldest tx is forwarded to the primary, and when the primary is suspected."""
        self._commits_since_compaction = 0
        self.listeners: list[CommitListener] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.timeouts = SyncDeferral()
        """Holds back a view timeout while sync moves the head."""
        self._batch_offer: asyncio.TimerHandle | None = None
        """The scheduled offer of the mempool to the replica, if one is."""
        self.dropped_messages = 0
        self.stage_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        """Wall seconds the loop spent in each of `STAGES` since start."""
        self.halted: str | None = None
        """Why the replica was stopped from signing (the consensus log could not be written), or None."""

    # -- inputs -------------------------------------------------------------------

    def start(self) -> None:
        self._run(self.replica.start())
        self.offer_batch_soon()

    def on_message(self, sender: str, body: bytes) -> None:
        if self.halted:
            return
        try:
            message = decode_message(body)
        except LedgerError as exc:
            self.dropped_messages += 1
            log.info("dropped consensus message from %s: %s", sender, exc)
            return
        self._run(self._timed("vote", self.replica.on_message, sender, message))

    def on_synced(self) -> None:
        """Blocks were applied by sync up to the store's head."""
        if self.halted:
            return
        self._run(self.replica.on_synced())
        self._compact()
        self.offer_batch_soon()

    def offer_batch_soon(self, at_once: bool = False) -> None:
        """Offer the mempool to the replica after a short wait that lets the batch fill; `at_once` (after a
        commit, when the txs waiting have waited a whole round) on the loop's next turn, sooner than a wait
        already set."""
        if not len(self.mempool) or (self._batch_offer is not None and not at_once):
            return
        if self._batch_offer is not None:
            self._batch_offer.cancel()
        self._batch_offer = asyncio.get_running_loop().call_later(
            0 if at_once else self.batch_wait_s, self._offer_batch
        )

    def _offer_batch(self) -> None:
        self._batch_offer = None
        if len(self.mempool) and not self.halted:
            self._run(self._timed("propose", self.replica.on_batch, self.mempool.batch(self.max_block_txs)))

    def _on_timer(self, name: str) -> None:
        self._timers.pop(name, None)
        if self.timeouts.defers(name, self.is_syncing(), self.executor.head()[0]):
            self._timers[name] = asyncio.get_running_loop().call_later(SYNC_RECHECK_S, self._on_timer, name)
            return
        self._run(self.replica.on_timeout(name))

    def _timed(self, stage: str, call: Callable[..., Sequence[Action]], *args: Any) -> Sequence[Action]:
        """`call(*args)`, its wall time added to `stage`."""
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.stage_seconds[stage] += time.perf_counter() - started

    # -- actions ------------------------------------------------------------------

    def _run(self, actions: Sequence[Action]) -> None:
        """Carry out the replica's actions (`carry_out`); nothing at all once halted."""
        if self.halted:
            return
        if carry_out(actions, self._write, self._perform) and self._commits_since_compaction >= self.compact_every:
            self._compact()

    def _write(self, records: list[dict[str, Any]]) -> bool:
        """Append records to the consensus log; on failure halt and answer False."""
        started = time.perf_counter()
        try:
            self.wal.append(records)
        except LogWriteFailed as exc:
            self._halt(exc)
            return False
        finally:
            self.stage_seconds["log_sync"] += time.perf_counter() - started
        return True

    def _compact(self) -> None:
        try:
            self.wal.compact(self.executor.head()[0])
        except LogWriteFailed as exc:
            self._halt(exc)
        self._commits_since_compaction = 0

    def _halt(self, exc: LogWriteFailed) -> None:
        """Stop the replica for good: no timer fires, no input reaches it, nothing it asks is done."""
        self.halted = str(exc)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        log.critical(
            "consensus halted: %s; this replica signs and sends nothing until the node is restarted "
            "(free or fix the disk first)",
            exc,
        )

    def _perform(self, action: Action) -> None:
        if isinstance(action, Send):
            self.transport.send(action.to, CONSENSUS_KIND, encode_message(action.message))
        elif isinstance(action, Broadcast):
            self.transport.broadcast(CONSENSUS_KIND, encode_message(action.message))
        elif isinstance(action, Decide):
            self._commit(action.block, action.certificate)
        elif isinstance(action, SetTimer):
            old = self._timers.pop(action.name, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[action.name] = loop.call_later(action.delay_ms / 1000, self._on_timer, action.name)
        elif isinstance(action, CancelTimer):
            handle = self._timers.pop(action.name, None)
            if handle is not None:
                handle.cancel()
        elif isinstance(action, RequestSync):
            self.request_sync(action.height)
        else:
            raise TypeError(f"unknown consensus action {action!r}")

    def _commit(self, block: Block, certificate: CommitCertificate) -> None:
        started = time.perf_counter()
        receipts = self.executor.commit(block, certificate)
        self._commits_since_compaction += 1
        for listener in self.listeners:
            listener(block, receipts)
        self.stage_seconds["commit"] += time.perf_counter() - started
        self._watch_oldest_tx(block)
        self.offer_batch_soon(at_once=True)

    def _watch_oldest_tx(self, block: Block) -> None:
        """Show the censorship watch the committed block and the mempool's oldest tx; at a timeout on that tx,
        recheck it (evicted if no longer admissible), then forward it to the primary or suspect the primary."""
        found = None if self.halted else self.watch.check(block, self.mempool, self.recheck)
        if found is None:
            return
        verdict, tx = found
        if verdict == FORWARD:
            if not self.replica.is_primary:
                self.transport.send(self.replica.primary, TXS_KIND, encode([encode_tx(tx)]))
        else:
            self._run(self.replica.on_stuck_tx())

    def close(self) -> None:
        if self._batch_offer is not None:
            self._batch_offer.cancel()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.wal.close()
