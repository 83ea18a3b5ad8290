"""Tx gossip: every admitted tx reaches every node, and no node forwards it twice.

When the node admits txs (from its API or from a peer), it calls
`on_admitted`; each tx not seen before is marked seen and queued, and the next
`flush` broadcasts everything queued as one `txs` message (a msgpack array of
encoded txs), split only when it would exceed the batch limits. A received
`txs` body goes through `decode_batch`, which refuses whole a batch over the
limits a sender splits by (count and bytes: honest peers never exceed them),
and returns only the txs this node has not yet seen; the node admits those and calls `on_admitted` again, which
forwards them once. With n nodes a tx therefore crosses at most n * (n - 1)
links and then stops: no storms. Seen ids live in a bounded LRU, so an old tx
that reappears after falling out of it is at worst forwarded once more (the
mempool and the ledger still refuse it as a duplicate). A node re-offers
txs that waited too long in its mempool with `resend`, which forwards them
again whether seen or not: a peer that refused one (its pool was full) then
takes it, and one that holds it already drops it as seen.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.tx import Tx, decode_tx, encode_tx

if TYPE_CHECKING:
    from p2p.transport import Transport

TXS_KIND = "txs"
"""Envelope kind of a gossip batch."""

DEFAULT_SEEN_CAPACITY = 200_000
"""Tx ids remembered for de-duplication."""

DEFAULT_MAX_BATCH_TXS = 1000
"""Most txs in one gossip message."""

DEFAULT_MAX_BATCH_BYTES = 2 * 1024 * 1024
"""Most encoded tx bytes in one gossip message."""

DEFAULT_FLUSH_INTERVAL_S = 0.02
"""How often `run` flushes the pending batch."""


class SeenIds:
    """A bounded set of tx ids that forgets the least recently touched first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, tx_id: bytes) -> bool:
        """Remember `tx_id`; return False if it was already known."""
        if tx_id in self._ids:
            self._ids.move_to_end(tx_id)
            return False
        self._ids[tx_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True


class TxGossip:
    """Pushes admitted txs to every peer, once."""

    def __init__(
        self,
        transport: Transport,
        *,
        seen_capacity: int = DEFAULT_SEEN_CAPACITY,
        max_batch_txs: int = DEFAULT_MAX_BATCH_TXS,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        forward: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        """`forward`: where a batch of encoded txs goes instead of a broadcast (a follower's `TxForwarder`)."""
        self.transport = transport
        self.forward = forward
        self.max_batch_txs = max_batch_txs
        self.max_batch_bytes = max_batch_bytes
        self.seen = SeenIds(seen_capacity)
        self._pending: list[bytes] = []
        self.forwarded = 0
        """Txs queued for forwarding (each tx at most once)."""
        self.resent = 0
        """Txs queued again by `resend`."""
        self.messages_sent = 0
        """`txs` messages broadcast."""
        self.received = 0
        """Txs decoded from peers' batches, new or not."""
        self.duplicates = 0
        """Received txs already seen (including repeats within one batch)."""
        self.malformed = 0
        """Received entries that were not a valid encoded tx, or bodies that were not a list."""
        self.oversized = 0
        """Received batches refused whole for holding more txs or bytes than a batch may."""

    def on_admitted(self, txs: Iterable[Tx]) -> int:
        """The node admitted `txs`: queue the ones not seen before; return how many were queued."""
        queued = 0
        for tx in txs:
            if self.seen.add(tx.id):
                self._pending.append(encode_tx(tx))
                queued += 1
        self.forwarded += queued
        return queued

    def resend(self, txs: Iterable[Tx]) -> int:
        """Queue `txs` for forwarding again (they waited too long); return how many were queued."""
        queued = [encode_tx(tx) for tx in txs]
        self._pending.extend(queued)
        self.resent += len(queued)
        return len(queued)

    def decode_batch(self, body: bytes) -> list[Tx]:
        """The txs of a received `txs` body that this node has not seen yet (malformed entries are skipped)."""
        try:
            items = decode(body)
        except LedgerError:
            items = None
        if not isinstance(items, list):
            self.malformed += 1
            return []
        if len(items) > self.max_batch_txs or (len(items) > 1 and len(body) > self.max_batch_bytes + len(items) * 8):
            # `flush` never sends more: the batch is refused before any of it is decoded or checked.
            self.oversized += 1
            return []
        fresh: dict[bytes, Tx] = {}
        for item in items:
            try:
                tx = decode_tx(item) if isinstance(item, bytes) else None
            except LedgerError:
                tx = None
            if tx is None:
                self.malformed += 1
                continue
            self.received += 1
            if tx.id in self.seen or tx.id in fresh:
                self.duplicates += 1
                continue
            fresh[tx.id] = tx
        return list(fresh.values())

    def flush(self) -> int:
        """Broadcast everything pending; return how many messages were sent."""
        sent = 0
        batch: list[bytes] = []
        size = 0
        for data in self._pending:
            if batch and (len(batch) >= self.max_batch_txs or size + len(data) > self.max_batch_bytes):
                self._send(batch)
                sent += 1
                batch, size = [], 0
            batch.append(data)
            size += len(data)
        if batch:
            self._send(batch)
            sent += 1
        self._pending = []
        self.messages_sent += sent
        return sent

    def _send(self, batch: list[bytes]) -> None:
        if self.forward is not None:
            self.forward(batch)
        else:
            self.transport.broadcast(TXS_KIND, encode(batch))

    async def run(self, interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        """Flush every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            self.flush()
