"""The mempool: admitted txs waiting for a block, bounded in count and bytes, overall and per signer.

Txs leave in arrival order (FIFO), so a client's txs are proposed in the
order it sent them. Two bounds keep one client from taking the pool:

- per signer, at most `signer_max_txs` txs and `signer_max_bytes` bytes wait
  at once (a quarter of the pool by default); a signer at its quota is
  refused with `SignerOverQuota` (429) until blocks take some of its txs;
- overall, at most `max_txs` and `max_bytes`; a full pool refuses with
  `MempoolFull` (503).

Both refusals carry `retry_after_s`, the `Retry-After` of the answer: the
time a few blocks take, after which the pool has room again if the network
commits. Nothing admitted is evicted to make room for a newcomer, except by
age: txs that waited longer than `ttl_ms` are dropped (`evict_stale`, every
second, and before a full pool refuses), since a tx that old is stuck behind a
partition or a failing rule and its sender can resend it. Committed txs are
removed by id, and after each block the txs whose validity window has closed
(no block may take them any more) are dropped.

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
from collections import OrderedDict
from dataclasses import dataclass

from ledger.errors import LedgerError
from ledger.tx import Tx

RETRY_AFTER_S = 2
"""What a refusal for room asks the client to wait before it sends again, in seconds."""


class MempoolFull(LedgerError):
    """The pool holds its maximum count or bytes."""

    code = "mempool_full"
    http_status = 503
    retry_after_s = RETRY_AFTER_S


class SignerOverQuota(LedgerError):
    """The signer already has its quota of txs or bytes waiting in the pool."""

    code = "signer_over_quota"
    http_status = 429
    retry_after_s = RETRY_AFTER_S


@dataclass
class _Entry:
    tx: Tx
    size: int
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
    ) -> None:
        """Quotas per signer default to a quarter of the pool's bounds."""
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.signer_max_txs = signer_max_txs if signer_max_txs is not None else max(max_txs // 4, 1)
        self.signer_max_bytes = signer_max_bytes if signer_max_bytes is not None else max(max_bytes // 4, 1)
        self.ttl_ms = ttl_ms
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._shares: dict[str, _Share] = {}
        """Signer -> what it has waiting; a signer with nothing waiting has no entry."""
        self._expiries: list[tuple[int, bytes]] = []
        """Heap of (valid_until, tx id) of the txs added; ids already removed are skipped when popped."""
        self.bytes = 0
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

    def get_share(self, signer: str) -> tuple[int, int]:
        """(txs, bytes) that `signer` has waiting."""
        share = self._shares.get(signer)
        return (0, 0) if share is None else (share.txs, share.bytes)

    def add(self, tx: Tx, size: int, now_ms: int, room: int = 0) -> bool:
        """Add an admitted tx (`room`: committed blocks with room so far); False if it was already here. Raises
        `SignerOverQuota` or `MempoolFull`."""
        if tx.id in self._entries:
            return False
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
        if len(self._entries) >= self.max_txs or self.bytes + size > self.max_bytes:
            self.evict_stale(now_ms)
            if len(self._entries) >= self.max_txs or self.bytes + size > self.max_bytes:
                raise MempoolFull(f"mempool is full ({len(self._entries)} txs, {self.bytes} bytes); retry later")
        self._entries[tx.id] = _Entry(tx, size, now_ms, room, now_ms)
        heapq.heappush(self._expiries, (tx.valid_until, tx.id))
        self.bytes += size
        share = self._shares.setdefault(tx.signer, _Share())
        share.txs += 1
        share.bytes += size
        return True

    def batch(self, max_txs: int) -> list[Tx]:
        """The oldest `max_txs` txs, left in the pool until committed."""
        out: list[Tx] = []
        for entry in self._entries.values():
            if len(out) >= max_txs:
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
            share = self._shares[entry.tx.signer]
            share.txs -= 1
            share.bytes -= entry.size
            if not share.txs:
                del self._shares[entry.tx.signer]

    def drop_expired(self, height: int) -> None:
        """Drop the txs that a block at `height` (or later) may no longer take."""
        if len(self._expiries) > 2 * len(self._entries) + 1024:
            self._expiries = [(entry.tx.valid_until, tx_id) for tx_id, entry in self._entries.items()]
            heapq.heapify(self._expiries)
        expiries = self._expiries
        while expiries and expiries[0][0] < height:
            _, tx_id = heapq.heappop(expiries)
            self.remove([tx_id])

    def evict_stale(self, now_ms: int) -> None:
        """Drop the txs that waited `ttl_ms` or longer (they are the oldest, at the front)."""
        while self._entries:
            tx_id, entry = next(iter(self._entries.items()))
            if now_ms - entry.added_ms < self.ttl_ms:
                return
            self.remove([tx_id])
            self.evicted += 1
