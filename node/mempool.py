"""The mempool: admitted txs waiting for a block, bounded in count and bytes.

Txs leave in arrival order (FIFO), so a client's txs are proposed in the
order it sent them. When the pool is full a new tx is refused with
`MempoolFull` (the client retries later); nothing already admitted is
evicted for it, except txs that waited longer than `ttl_ms`, which are
dropped first (a tx that old is assumed stuck behind a failing rule or a
partition; its sender can resend it). Committed txs are removed by id, and
after each block the txs whose validity window has closed (no block may take
them any more) are dropped.

A tx that is stuck is offered to the peers again (`take_unproposed`):
gossip forwards a tx once, and a peer whose pool was full then never had it,
so without this a tx admitted here would wait until this node is primary.
Stuck means: it waited `age_ms`, and either `min_blocks` blocks were
committed since it arrived without it (primaries take their oldest txs
first, so a tx that old is missing from theirs) or none was committed at
all lately (the caller passes 0). A pool that is merely long, under
overload, re-offers nothing: re-offering it would only add decoding work
to nodes that are already behind.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass

from ledger.errors import LedgerError
from ledger.tx import Tx


class MempoolFull(LedgerError):
    """The pool holds its maximum count or bytes."""

    code = "mempool_full"
    http_status = 503


@dataclass
class _Entry:
    tx: Tx
    size: int
    added_ms: int
    added_height: int
    """The committed height when the tx arrived."""
    offered_ms: int
    """When the tx was last gossiped (at admission, then by `take_unproposed`)."""


class Mempool:
    """FIFO of admitted txs keyed by tx id."""

    def __init__(self, max_txs: int = 50_000, max_bytes: int = 64 * 1024 * 1024, ttl_ms: int = 600_000) -> None:
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.ttl_ms = ttl_ms
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._expiries: list[tuple[int, bytes]] = []
        """Heap of (valid_until, tx id) of the txs added; ids already removed are skipped when popped."""
        self.bytes = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    def get(self, tx_id: bytes) -> Tx | None:
        entry = self._entries.get(tx_id)
        return None if entry is None else entry.tx

    def add(self, tx: Tx, size: int, now_ms: int, height: int = 0) -> bool:
        """Add an admitted tx; False if it was already here. Raises `MempoolFull`."""
        if tx.id in self._entries:
            return False
        if len(self._entries) >= self.max_txs or self.bytes + size > self.max_bytes:
            self._evict_expired(now_ms)
            if len(self._entries) >= self.max_txs or self.bytes + size > self.max_bytes:
                raise MempoolFull(f"mempool is full ({len(self._entries)} txs, {self.bytes} bytes); retry later")
        self._entries[tx.id] = _Entry(tx, size, now_ms, height, now_ms)
        heapq.heappush(self._expiries, (tx.valid_until, tx.id))
        self.bytes += size
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

    def take_unproposed(self, now_ms: int, height: int, age_ms: int, min_blocks: int, max_txs: int) -> list[Tx]:
        """Up to `max_txs` of the oldest stuck txs (see the module docstring), marked as offered now."""
        out: list[Tx] = []
        for entry in self._entries.values():
            if len(out) >= max_txs or now_ms - entry.added_ms < age_ms:
                break
            if height - entry.added_height >= min_blocks and now_ms - entry.offered_ms >= age_ms:
                entry.offered_ms = now_ms
                out.append(entry.tx)
        return out

    def remove(self, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            entry = self._entries.pop(tx_id, None)
            if entry is not None:
                self.bytes -= entry.size

    def drop_expired(self, height: int) -> None:
        """Drop the txs that a block at `height` (or later) may no longer take."""
        if len(self._expiries) > 2 * len(self._entries) + 1024:
            self._expiries = [(entry.tx.valid_until, tx_id) for tx_id, entry in self._entries.items()]
            heapq.heapify(self._expiries)
        expiries = self._expiries
        while expiries and expiries[0][0] < height:
            _, tx_id = heapq.heappop(expiries)
            self.remove([tx_id])

    def _evict_expired(self, now_ms: int) -> None:
        while self._entries:
            tx_id, entry = next(iter(self._entries.items()))
            if now_ms - entry.added_ms < self.ttl_ms:
                return
            self.remove([tx_id])
            self.evicted += 1
