"""The snapshot a node offers to peers for state sync, and where its block history starts.

Every `every` committed blocks (and at start, and after loading a snapshot)
the node takes a LevelDB snapshot of its store right after the commit, so
the state stays frozen at that block while the node goes on committing. The
first peer to ask for `GET /p2p/snapshot` after that has a `SnapshotOffer`
prepared over the newest such point: one scan of the state, on the server's
worker thread (never on the event loop), cuts it into chunk bodies kept in a
file; the point's store snapshot is then let go. So an offer is prepared once
per snapshot height, and a chunk request only reads its span of the file
(the route reads it on a thread too). The offer is kept at least `hold_s`
seconds, so a peer that is fetching its chunks is not cut off by a newer
offer; after that the next manifest request prepares the newest point,
answering with the current offer meanwhile (only a node with no offer yet
makes the request wait). A peer whose fetch outlives the offer is answered
404 for its chunks and asks another peer.

When the validator set has changed, an offer carries the chain of set
changes up to its block (`ledger.epochs.EpochLink`), read from the blocks
before each change; a node that lacks one of those blocks (it joined by
state sync above it) offers no snapshot at that point rather than one that
no peer could verify.

A node that joined by state sync holds no blocks below the snapshot it
loaded: `find_base_height` tells the lowest block it has.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ledger.block import Block, CommitCertificate
from ledger.encoding import decode
from ledger.epochs import EpochLink
from ledger.membership import MEMBERSHIP_KEY, Membership
from ledger.store import Store, StoreSnapshot
from p2p.snapshot import DEFAULT_CHUNK_ENTRIES, SnapshotOffer

OFFER_HOLD_S = 30.0
"""Least time an offer is served before a newer point replaces it."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotPoint:
    """A frozen store at a committed block, with what certifies that block."""

    reader: StoreSnapshot
    block: Block
    certificate: CommitCertificate
    epochs: tuple[EpochLink, ...]
    """The validator set changes up to `block`."""


class SnapshotServer:
    """Takes snapshot points as blocks commit, prepares the offer of one off the event loop, and serves it."""

    def __init__(
        self,
        store: Store,
        every: int,
        chunk_entries: int = DEFAULT_CHUNK_ENTRIES,
        hold_s: float = OFFER_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.every = max(every, 1)
        self.chunk_entries = chunk_entries
        self.hold_s = hold_s
        self.clock = clock
        self.point: SnapshotPoint | None = None
        """The newest point taken."""
        self.offer: SnapshotOffer | None = None
        """What `/p2p/snapshot` serves, or None before the first offer is prepared."""
        self.prepared = 0
        """Offers prepared (each is one scan of the state)."""
        self._offer_point: SnapshotPoint | None = None
        self._offered_at = 0.0
        self._preparing: tuple[SnapshotPoint, asyncio.Task[None]] | None = None
        """The point whose offer the worker is preparing, and the task that installs it."""
        self._stop = threading.Event()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")

    def on_commit(self, height: int) -> None:
        if height % self.every == 0:
            self.capture()

    def capture(self) -> None:
        """Take a point at the store's head (nothing before block 1)."""
        head = self.store.head()
        if head is None:
            return
        block = self.store.get_block(head.height)
        certificate = self.store.get_certificate(head.height)
        if block is None or certificate is None:
            raise RuntimeError(f"store head {head.height} has no block or certificate")
        reader = self.store.snapshot()
        epochs = read_epoch_links(self.store, reader.get_state(MEMBERSHIP_KEY.encode()), head.height)
        if epochs is None:
            reader.close()
            return
        old = self.point
        self.point = SnapshotPoint(reader, block, certificate, epochs)
        if old is not None and not self._is_preparing(old):
            old.reader.close()

    def _is_preparing(self, point: SnapshotPoint) -> bool:
        return self._preparing is not None and self._preparing[0] is point

    async def current_offer(self) -> SnapshotOffer | None:
        """The offer for a manifest request. Once the current one was held long enough, the newest point's is
        prepared; the request waits for it only when there is no offer yet."""
        point = self.point
        held = self.offer is not None and self.clock() - self._offered_at < self.hold_s
        if point is not None and point is not self._offer_point and not held and self._preparing is None:
            self._preparing = (point, asyncio.create_task(self._prepare(point)))
        if self.offer is None and self._preparing is not None:
            await asyncio.shield(self._preparing[1])
        return self.offer

    async def _prepare(self, point: SnapshotPoint) -> None:
        """Prepare `point`'s offer on the worker thread and install it; the point's store snapshot is let go."""
        try:
            offer = await asyncio.get_running_loop().run_in_executor(self._worker, self._build_offer, point)
        except InterruptedError:
            return
        except Exception:
            log.exception("preparing the snapshot offer at height %d failed", point.block.height)
            return
        finally:
            if not self._stop.is_set():
                self._preparing = None
                if point is not self.point:
                    point.reader.close()
        if self._stop.is_set():
            offer.close()
            return
        old = self.offer
        self.offer, self._offer_point, self._offered_at = offer, point, self.clock()
        self.prepared += 1
        if old is not None:
            old.close()

    def _build_offer(self, point: SnapshotPoint) -> SnapshotOffer:
        return SnapshotOffer(
            point.reader, point.block, point.certificate, self.chunk_entries, point.epochs, self._stop.is_set
        )

    def close(self) -> None:
        """Stop a preparation under way (waiting for its worker to let go of the store) and drop every offer."""
        self._stop.set()
        self._worker.shutdown(wait=True)
        points = [self.point, self._preparing[0] if self._preparing else None]
        for point in {id(p): p for p in points if p is not None}.values():
            point.reader.close()
        if self.offer is not None:
            self.offer.close()
        self.point = self._offer_point = self.offer = self._preparing = None


def read_epoch_links(store: Store, membership: bytes | None, height: int) -> tuple[EpochLink, ...] | None:
    """The set changes up to block `height` of the stored membership record `membership`, with the certified
    header before each; None if the store lacks one of those blocks."""
    if membership is None:
        return ()
    links = []
    for epoch in Membership.from_wire(decode(membership)).epochs[1:]:
        if epoch.from_height > height:
            break
        block = store.get_block(epoch.from_height - 1)
        certificate = store.get_certificate(epoch.from_height - 1)
        if block is None or certificate is None:
            return None
        links.append(EpochLink(epoch.validators, block.header, certificate))
    return tuple(links)


def find_base_height(store: Store) -> int:
    """Lowest height whose block this store holds (1 for a full history, 0 when empty)."""
    for key in store.raw_db().iterator(prefix=b"b/", include_value=False):
        return int.from_bytes(key[2:], "big")
    return 0
