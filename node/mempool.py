"""The mempool: admitted txs waiting for a block, bounded in count and bytes, overall and per signer.

Txs leave in arrival order (FIFO), so a client's txs are proposed in the
order it sent them. Two bounds keep one client from taking the pool:

- per signer, at most `signer_max_txs` txs and `signer_max_bytes` bytes wait
  at once (a quarter of the pool by default); a signer at its quota is
  refused with `SignerOverQuota` (429) until blocks take some of its txs;
- overall, at most `max_txs` and `max_bytes`, and at most the work the
  network commits in `max_wait_ms` (see below); a full pool refuses with
  `MempoolFull` (503).

**Bounded by work.** A count alone lets the queue grow to minutes of work
before anyone is refused: every tx admitted then waits minutes for its
block, and a client has no signal to slow down. So the pool also takes from
clients at most what the network committed in the last `RATE_WINDOW_MS`
scaled to `max_wait_ms` (`on_committed` feeds the rate), and never less
than `min_txs` (an idle network, whose rate says nothing, still takes a
burst). Both sides count work in the units proposals are filled by
(`ledger.block.compute_tx_work`), not txs: an `order.import` of a hundred
orders fills the pool as about ninety single orders do, so bulk txs cannot
queue more than the network commits before their `ttl_ms`. A tx gossiped
by a peer was admitted there and is held whatever the work bound (up to
`max_txs`): every node then holds every admitted tx, so any primary can
propose it, and a tx that blocks with room pass over really
is being passed over (the censorship watch, `node.censorship`, relies on it).
A client refused for room is told, in `retry_after_s`, how long the pool
takes to drain what is over the bound at the current rate (1 to 10 s): it
slows down to what the network commits, and the txs it has in the pool wait
about `max_wait_ms` at most.

Nothing admitted is evicted to make room for a newcomer, except by age: txs
that waited longer than `ttl_ms` are dropped (`evict_stale`, every second,
and before a full pool refuses), since a tx that old is stuck behind a
partition or a failing rule and its sender can resend it. Committed txs are
removed by id, and after each block the txs whose validity window has closed
(no block may take them any more) are dropped. A tx dropped for any reason
but its commit is remembered (the last `DROPPED_KEPT` of them, with the
reason) so that its sender can learn why it will not commit
(`GET /v1/tx/{id}` answers `dropped`), instead of finding it gone.

A proposal (`batch`) takes the oldest txs up to the block's tx count, a
large tx weighing as several (`ledger.block.WORK_UNIT_BYTES`): the work of executing
a block, which every replica does before it votes, stays well inside the
view timeout even when the pool holds bulk txs.

A tx that is stuck is offered to the peers again (`take_unproposed`):
gossip forwards a tx once, and a peer whose pool was full then never had it,
so without this a tx admitted here would wait until this node is primary.
Stuck means: it waited `age_ms`, and either `min_blocks` blocks that had
room for it were committed since it arrived without it (primaries take
their oldest txs first, so a tx that old is missing from theirs) or none was
committed at all lately (the caller passes 0). The caller counts the blocks
with room (`ledger.block.has_room`): under overload every block is full and
a pool that is merely long re-offers nothing, which would only add decoding
work to nodes that are already behind; once the load falls, the blocks have
room again and what is truly missing at the primary is offered again.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from ledger.block import compute_tx_work
from ledger.errors import LedgerError
from ledger.idempotency import is_keyed
from ledger.tx import Tx

RETRY_AFTER_S = 2
"""What a refusal for room asks the client to wait before it sends again, in seconds, when the pool cannot
say better (a signer's quota, a pool full by count or bytes)."""

MAX_RETRY_AFTER_S = 10
"""Longest wait a refusal asks for (about the work the pool holds)."""

RATE_WINDOW_MS = 10_000
"""How far back the commit rate that bounds the pool's work is measured."""

MIN_RATE_SPAN_MS = 1_000
"""Shortest span a commit rate is measured over (one block just committed is not a rate of thousands a second)."""

DROPPED_KEPT = 10_000
"""How many dropped tx ids (with their reason) the pool remembers for status queries."""


class Dropped:
    """Why a tx left the pool without being committed (the `reason` of its status)."""

    STALE = "waited_too_long"
    EXPIRED = "validity_window_closed"
    INADMISSIBLE = "no_longer_admissible"


class MempoolFull(LedgerError):
    """The pool holds its maximum count or bytes."""

    code = "mempool_full"
    http_status = 503
    retry_after_s = RETRY_AFTER_S

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SignerOverQuota(LedgerError):
    """The signer already has its quota of txs or bytes waiting in the pool."""

    code = "signer_over_quota"
    http_status = 429
    retry_after_s = RETRY_AFTER_S


@dataclass
class _Entry:
    tx: Tx
    size: int
    work: int
    """Its weight by the measure proposals are filled by (`ledger.block.compute_tx_work`)."""
    added_ms: int
    added_room: int
    """How many committed blocks had room when the tx arrived (the caller's count)."""
    offered_ms: int
    """When the tx was last gossiped (at admission, then by `take_unproposed`)."""


@dataclass
class _Share:
    """What one signer has waiting."""

    txs: int = 0
    bytes: int = 0


class Mempool:
    """FIFO of admitted txs keyed by tx id."""

    def __init__(
        self,
        max_txs: int = 50_000,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        signer_max_txs: int | None = None,
        signer_max_bytes: int | None = None,
        ttl_ms: int = 600_000,
        max_wait_ms: int | None = None,
        min_txs: int = 2_000,
    ) -> None:
        """Quotas per signer default to a quarter of the pool's bounds; without `max_wait_ms` the pool is
        bounded by count and bytes only."""
        self.max_txs = max_txs
        self.max_wait_ms = max_wait_ms
        self.min_txs = min(min_txs, max_txs)
        self._commits: deque[tuple[int, int]] = deque()
        """(when, txs) of the blocks committed in the last `RATE_WINDOW_MS`."""
        self._committed_in_window = 0
        self._dropped: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        """Tx id -> (signer, reason) of the last `DROPPED_KEPT` txs dropped without being committed."""
        self.max_bytes = max_bytes
        self.signer_max_txs = signer_max_txs if signer_max_txs is not None else max(max_txs // 4, 1)
        self.signer_max_bytes = signer_max_bytes if signer_max_bytes is not None else max(max_bytes // 4, 1)
        self.ttl_ms = ttl_ms
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._shares: dict[str, _Share] = {}
        """Signer -> what it has waiting; a signer with nothing waiting has no entry."""
        self._keyed: dict[tuple[str, int], bytes] = {}
        """(signer, keyed nonce) -> id of the first waiting tx that carries that idempotency key."""
        self._expiries: list[tuple[int, bytes]] = []
        """Heap of (valid_until, tx id) of the txs added; ids already removed are skipped when popped."""
        self.bytes = 0
        self.work = 0
        """The work of the txs waiting, in the units proposals are filled by: what the wait bound limits."""
        self.evicted = 0
        """Txs dropped for waiting longer than `ttl_ms`."""
        self.refused_over_quota = 0
        """Txs refused because their signer was at its quota."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    def get(self, tx_id: bytes) -> Tx | None:
        entry = self._entries.get(tx_id)
        return None if entry is None else entry.tx

    def find_keyed(self, signer: str, nonce: int) -> Tx | None:
        """The waiting tx of `signer` that carries the keyed `nonce` (`ledger.idempotency`), if any."""
        tx_id = self._keyed.get((signer, nonce))
        return None if tx_id is None else self._entries[tx_id].tx

    def get_share(self, signer: str) -> tuple[int, int]:
        """(txs, bytes) that `signer` has waiting."""
        share = self._shares.get(signer)
        return (0, 0) if share is None else (share.txs, share.bytes)

    def require_room(self, tx: Tx, size: int, now_ms: int, from_peer: bool = False) -> None:
        """Raise `SignerOverQuota` or `MempoolFull` unless `tx` of `size` bytes fits now (stale txs are evicted
        first if needed). Cheap: the node asks it before it checks a tx's signature."""
        share = self._shares.get(tx.signer) or _Share()
        if share.txs >= self.signer_max_txs or share.bytes + size > self.signer_max_bytes:
            self.evict_stale(now_ms)
            share = self._shares.get(tx.signer) or _Share()
            if share.txs >= self.signer_max_txs or share.bytes + size > self.signer_max_bytes:
                self.refused_over_quota += 1
                raise SignerOverQuota(
                    f"{tx.signer} has {share.txs} txs ({share.bytes} bytes) waiting, its quota is"
                    f" {self.signer_max_txs} txs and {self.signer_max_bytes} bytes; retry once blocks take some"
                )
        if from_peer:
            held, limit = len(self._entries) + 1, self.max_txs
        else:
            held, limit = self.work + compute_tx_work(size), self.limit(now_ms)
        if held > limit or self.bytes + size > self.max_bytes:
            self.evict_stale(now_ms)
            held = len(self._entries) + 1 if from_peer else self.work + compute_tx_work(size)
            if held > limit or self.bytes + size > self.max_bytes:
                raise MempoolFull(
                    f"mempool is full ({len(self._entries)} txs of {self.work} units of work, {self.bytes} bytes;"
                    f" it takes {limit} units, about {self.max_wait_ms or 0} ms of the network's work); retry later",
                    self._retry_after_s(held - limit, now_ms),
                )

    def add(self, tx: Tx, size: int, now_ms: int, room: int = 0, from_peer: bool = False) -> bool:
        """Add an admitted tx (`room`: committed blocks with room so far; `from_peer`: gossiped, already admitted by
        another node, so held up to `max_txs` whatever the work bound); False if it was already here. Raises
        `SignerOverQuota` or `MempoolFull`."""
        if tx.id in self._entries:
            return False
        self.require_room(tx, size, now_ms, from_peer)
        self._dropped.pop(tx.id, None)
        self._entries[tx.id] = _Entry(tx, size, compute_tx_work(size), now_ms, room, now_ms)
        self.work += self._entries[tx.id].work
        if is_keyed(tx.nonce):
            self._keyed.setdefault((tx.signer, tx.nonce), tx.id)
        heapq.heappush(self._expiries, (tx.valid_until, tx.id))
        self.bytes += size
        share = self._shares.setdefault(tx.signer, _Share())
        share.txs += 1
        share.bytes += size
        return True

    def on_committed(self, work: int, now_ms: int) -> None:
        """A block of `work` units (`ledger.block.compute_block_work`) was committed at `now_ms` (feeds the commit
        rate that bounds the pool)."""
        self._commits.append((now_ms, work))
        self._committed_in_window += work
        self._forget_commits_before(now_ms - RATE_WINDOW_MS)

    def _forget_commits_before(self, cutoff_ms: int) -> None:
        while self._commits and self._commits[0][0] <= cutoff_ms:
            self._committed_in_window -= self._commits.popleft()[1]

    def rate(self, now_ms: int) -> float:
        """Work (units) the network committed per millisecond over the last `RATE_WINDOW_MS`, or since the first
        commit of that window if it came later (at least `MIN_RATE_SPAN_MS`): after idle time the rate is that of the
        blocks since, not diluted by the pause."""
        self._forget_commits_before(now_ms - RATE_WINDOW_MS)
        if not self._committed_in_window:
            return 0.0
        span = max(now_ms - self._commits[0][0], MIN_RATE_SPAN_MS)
        return self._committed_in_window / min(span, RATE_WINDOW_MS)

    def limit(self, now_ms: int) -> int:
        """How much work (units) the pool takes from clients now: `max_txs`, or the work of `max_wait_ms` at the
        commit rate, never less than `min_txs`."""
        if self.max_wait_ms is None:
            return self.max_txs
        return max(self.min_txs, min(self.max_txs, int(self.rate(now_ms) * self.max_wait_ms)))

    def _retry_after_s(self, excess: int, now_ms: int) -> int:
        """Seconds the network takes, at its current rate, to commit `excess` units (1 to `MAX_RETRY_AFTER_S`)."""
        rate = self.rate(now_ms)
        if rate <= 0:
            return RETRY_AFTER_S
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(max(excess, 1) / rate / 1000)))

    def dropped(self, tx_id: bytes) -> tuple[str, str] | None:
        """(signer, reason) of a tx dropped without being committed, if it is among the last remembered."""
        return self._dropped.get(tx_id)

    def drop(self, tx_id: bytes, reason: str) -> None:
        """Remove a tx that will not be committed from here, remembering why."""
        entry = self._entries.get(tx_id)
        if entry is None:
            return
        self.remove([tx_id])
        self._dropped[tx_id] = (entry.tx.signer, reason)
        if len(self._dropped) > DROPPED_KEPT:
            self._dropped.popitem(last=False)

    def batch(self, max_txs: int) -> list[Tx]:
        """The oldest txs, as many as weigh `max_txs` at most (`ledger.block.compute_tx_work`), left in the pool
        until committed."""
        out: list[Tx] = []
        weight = 0
        for entry in self._entries.values():
            weight += entry.work
            if weight > max_txs and out:
                break
            out.append(entry.tx)
        return out

    def oldest(self) -> Tx | None:
        """The tx that has waited longest, if any."""
        for entry in self._entries.values():
            return entry.tx
        return None

    def take_unproposed(self, now_ms: int, room: int, age_ms: int, min_blocks: int, max_txs: int) -> list[Tx]:
        """Up to `max_txs` of the oldest stuck txs (see the module docstring), marked as offered now."""
        out: list[Tx] = []
        for entry in self._entries.values():
            if len(out) >= max_txs or now_ms - entry.added_ms < age_ms:
                break
            if room - entry.added_room >= min_blocks and now_ms - entry.offered_ms >= age_ms:
                entry.offered_ms = now_ms
                out.append(entry.tx)
        return out

    def remove(self, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            entry = self._entries.pop(tx_id, None)
            if entry is None:
                continue
            self.bytes -= entry.size
            self.work -= entry.work
            share = self._shares[entry.tx.signer]
            share.txs -= 1
            share.bytes -= entry.size
            if not share.txs:
                del self._shares[entry.tx.signer]
            if self._keyed.get((entry.tx.signer, entry.tx.nonce)) == tx_id:
                del self._keyed[(entry.tx.signer, entry.tx.nonce)]

    def drop_expired(self, height: int) -> None:
        """Drop the txs that a block at `height` (or later) may no longer take."""
        if len(self._expiries) > 2 * len(self._entries) + 1024:
            self._expiries = [(entry.tx.valid_until, tx_id) for tx_id, entry in self._entries.items()]
            heapq.heapify(self._expiries)
        expiries = self._expiries
        while expiries and expiries[0][0] < height:
            _, tx_id = heapq.heappop(expiries)
            self.drop(tx_id, Dropped.EXPIRED)

    def evict_stale(self, now_ms: int) -> None:
        """Drop the txs that waited `ttl_ms` or longer (they are the oldest, at the front)."""
        while self._entries:
            tx_id, entry = next(iter(self._entries.items()))
            if now_ms - entry.added_ms < self.ttl_ms:
                return
            self.drop(tx_id, Dropped.STALE)
            self.evicted += 1
