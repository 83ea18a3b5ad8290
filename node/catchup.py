"""Catching up: a node that is behind its peers fetches the blocks it missed.

A background loop asks the peers for their heights every second. When some
peer is ahead and this node made no progress through consensus since the
last look (or since it started, or the replica asked for it with
`RequestSync`), it runs block sync: blocks arrive in batches with their
commit certificates, are verified by `p2p.sync`, then re-executed here and
committed like any decided block, except that a synced block is not waited
to reach the disk: the whole run is synced once, at its end (a killed node
loses none of it; a power cut may lose its last blocks, whole, and the node
fetches them again).
When it is done the replica is told, and joins consensus at the new head
(whose stored certificate proves that head in later view changes).

A node with an empty store can skip the replay: before its first block sync
it runs state sync (`p2p.snapshot.StateSync`), loads the verified state of
the highest certified snapshot its peers offer (each chunk taken from any of
them and checked as it arrives), and block-syncs only what was committed
after it. `state_sync` decides when: True tries any snapshot, None
(automatic) only one at least `min_snapshot_distance` blocks ahead, False
never. When no peer offers a snapshot that checks out, block sync replays
from genesis as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ledger.block import Block, CommitCertificate
from ledger.errors import InvalidBlock, LedgerError
from node.executor import Executor
from p2p.snapshot import StateSync
from p2p.sync import BlockSync, SyncReport

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
"""How often peers' heights are checked."""


class CatchUp:
    """Runs block sync when this node falls behind."""

    def __init__(
        self,
        executor: Executor,
        make_sync: Callable[[Callable[[Block, CommitCertificate], None]], BlockSync],
        on_applied: Callable[[Block, list], None],
        on_synced: Callable[[], None],
        state_sync: StateSync | None = None,
        state_sync_mode: bool | None = None,
        min_snapshot_distance: int = 1,
    ) -> None:
        self.executor = executor
        self.sync = make_sync(self.apply)
        self.on_applied = on_applied
        self.on_synced = on_synced
        self.state_sync = state_sync
        self.state_sync_mode = state_sync_mode
        self.min_snapshot_distance = max(min_snapshot_distance, 1)
        self.last_report: SyncReport | None = None
        self.syncing = False
        """True while blocks or a snapshot are being fetched and applied."""
        self._wanted = asyncio.Event()

    def request(self) -> None:
        """Sync as soon as possible (the replica saw others ahead)."""
        self._wanted.set()

    def apply(self, block: Block, certificate: CommitCertificate) -> None:
        """Re-execute a verified block and commit it (skipping one consensus committed meanwhile)."""
        height, _head_hash = self.executor.head()
        if block.height <= height:
            stored = self.executor.store.get_block(block.height)
            if stored is None or stored.hash() != block.hash():
                raise InvalidBlock(f"block {block.height} from sync conflicts with the committed block")
            return
        receipts = self.executor.commit(block, certificate, sync=False)
        self.on_applied(block, receipts)

    async def run(self) -> None:
        """Poll peers and sync when behind, until cancelled; a round that fails on what a peer sent is
        logged and the next round runs as usual."""
        last_height = self.executor.head()[0]
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), POLL_INTERVAL_S)
            wanted = self._wanted.is_set()
            self._wanted.clear()
            try:
                await self.catch_up_once(wanted or self.executor.head()[0] == last_height)
            except LedgerError as exc:
                log.warning("catch-up round failed, retrying in the next one: %s: %s", exc.code, exc)
            last_height = self.executor.head()[0]

    async def catch_up_once(self, stalled: bool) -> None:
        """One round: sync if some peer is ahead and this node is `stalled` (or was asked to)."""
        height = self.executor.head()[0]
        heights = await self.sync.poll_status()
        if max(heights.values(), default=0) > height and stalled:
            self.syncing = True
            try:
                if height == 0:
                    await self._state_sync()
                await self._sync()
            finally:
                self.syncing = False

    async def _state_sync(self) -> None:
        """Load the state of a peer's snapshot into an empty store, when allowed and offered."""
        if self.state_sync is None or self.state_sync_mode is False:
            return
        min_height = 0 if self.state_sync_mode else self.min_snapshot_distance - 1
        manifest = await self.state_sync.sync(min_height)
        for peer, reason in self.state_sync.refused.items():
            log.warning("state sync refused peer %s: %s", peer, reason)
        if manifest is None:
            log.warning("state sync: no peer offers a snapshot above height %d; replaying blocks instead", min_height)
            return
        log.warning(
            "state sync: loaded %d state entries at height %d; blocks below it are not held here",
            manifest.entries,
            manifest.height,
        )

    async def _sync(self) -> None:
        height, head_hash = self.executor.head()
        try:
            report = await self.sync.sync(height, head_hash)
        finally:
            self.executor.store.flush()
        self.last_report = report
        if report.blocks:
            log.warning(
                "block sync: %d blocks (%d txs) up to height %d in %.2f s",
                report.blocks,
                report.txs,
                report.height,
                report.seconds,
            )
        for peer, reason in report.refused.items():
            log.warning("block sync refused peer %s: %s", peer, reason)
        self.on_synced()
