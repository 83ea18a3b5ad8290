"""The snapshot a node offers to peers for state sync, and where its block history starts.

Every `every` committed blocks (and at start, and after loading a snapshot)
the node takes a LevelDB snapshot of its store right after the commit, so
the state stays frozen at that block while the node goes on committing. The
first peer to ask for `GET /p2p/snapshot` after that gets a `SnapshotOffer`
over the newest such point (building it scans the state once, to count the
entries). The offer is kept at least `hold_s` seconds, so a peer that is
fetching its chunks is not cut off by a newer offer; after that the next
manifest request moves the offer to the newest point. A peer whose fetch
outlives the offer sees chunks that do not match the manifest, refuses this
node and tries another.

When the validator set has changed, an offer carries the chain of set
changes up to its block (`p2p.snapshot.EpochLink`), read from the blocks
before each change; a node that lacks one of those blocks (it joined by
state sync above it) offers no snapshot at that point rather than one that
no peer could verify.

A node that joined by state sync holds no blocks below the snapshot it
loaded: `find_base_height` tells the lowest block it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.block import Block, CommitCertificate
from ledger.encoding import decode
from ledger.membership import MEMBERSHIP_KEY, Membership
from ledger.store import Store, StoreSnapshot
from p2p.snapshot import DEFAULT_CHUNK_ENTRIES, EpochLink, SnapshotOffer

OFFER_HOLD_S = 30.0
"""Least time an offer is served before a newer point replaces it."""


@dataclass(frozen=True)
class SnapshotPoint:
    """A frozen store at a committed block, with what certifies that block."""

    reader: StoreSnapshot
    block: Block
    certificate: CommitCertificate
    epochs: tuple[EpochLink, ...]
    """The validator set changes up to `block`."""


class SnapshotServer:
    """Takes snapshot points as blocks commit and serves the current offer."""

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
        """What `/p2p/snapshot` serves, or None before the first request."""
        self._offer_point: SnapshotPoint | None = None
        self._offered_at = 0.0

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
        if old is not None and old is not self._offer_point:
            old.reader.close()

    def current_offer(self) -> SnapshotOffer | None:
        """The offer for a manifest request: moved to the newest point once the current one was held long enough."""
        point = self.point
        if point is None or point is self._offer_point:
            return self.offer
        if self.offer is not None and self.clock() - self._offered_at < self.hold_s:
            return self.offer
        old = self._offer_point
        self.offer = SnapshotOffer(point.reader, point.block, point.certificate, self.chunk_entries, point.epochs)
        self._offer_point, self._offered_at = point, self.clock()
        if old is not None:
            old.reader.close()
        return self.offer

    def close(self) -> None:
        for point in {id(p): p for p in (self.point, self._offer_point) if p is not None}.values():
            point.reader.close()
        self.point = self._offer_point = self.offer = None


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
