"""Idempotency keys of writes: what this node signed for a key, kept for a day, then forgotten.

The ledger itself records each key's first tx (`ledger.idempotency`), so a
key is one action on every node; that record exists once the tx is
committed. Until then this node's own record lets a retry here sign the very
same tx and refuses another body at once. A write sent with an
`Idempotency-Key` is remembered per identity and key (`node.api.writes`
says what the same key then answers): a hash of the request, the txs it
made and their window. The record lives `KEEP_MS` from
the key's first use: a retry within that time answers as the first request
did; after it the key is free, and a request with it is a new one. A key a
client reuses for another write after a day is not a conflict; a retry that
comes a day late is not a retry.

Records are kept in this node's own part of the store, beside an index by
expiry time:

    idem/<identity>/<key>                           -> {request, tx_ids, valid_until, expires_ms}
    idem-due/<expires_ms:8>\\0<identity>/<key>       -> empty

An expired record reads as absent at once; each write that keeps a key also
sweeps at most `SWEEP_MAX` records that expired, oldest first, from the start
of the index: what a sweep reads is what is due, never the keys still kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import TypedDict

from ledger.encoding import decode, encode
from ledger.idempotency import KEEP_MS
from ledger.store import Store
from node.executor import Clock

SWEEP_MAX = 100
"""Most expired records one write sweeps."""

_RECORD = b"idem/"
_DUE = b"idem-due/"


class KeptWrite(TypedDict):
    """What the node answered for an identity's key."""

    request: bytes
    """sha256 of the request (tx kind and payload, or the list imported)."""
    tx_ids: list[bytes]
    valid_until: int
    """The window the txs were signed with, so a retry signs the very same txs."""
    expires_ms: int
    """When the key is free again (the node's clock, ms since the epoch)."""


def _record_key(identity: str, key: str) -> bytes:
    return _RECORD + f"{identity}/{key}".encode()


def _due_key(expires_ms: int, record_key: bytes) -> bytes:
    return _DUE + expires_ms.to_bytes(8, "big") + b"\x00" + record_key[len(_RECORD) :]


class IdempotencyKeys:
    """The keys a node keeps, on its clock."""

    def __init__(self, store: Store, clock: Clock, keep_ms: int = KEEP_MS) -> None:
        self.store = store
        self.clock = clock
        self.keep_ms = keep_ms

    def recall(self, identity: str, key: str) -> KeptWrite | None:
        """What the key answered, while it is kept (None once it expired, or if it was never used)."""
        raw = self.store.get_local(_record_key(identity, key))
        if raw is None:
            return None
        kept: KeptWrite = decode(raw)
        return kept if _expiry(kept) > self.clock() else None

    def remember(self, identity: str, key: str, request: bytes, tx_ids: Sequence[bytes], valid_until: int) -> KeptWrite:
        """Keep what a key answered, unless it is kept already (the first answer stands); then sweep. Answers
        the record kept."""
        kept = self.recall(identity, key)
        if kept is None:
            now = self.clock()
            kept = {
                "request": request,
                "tx_ids": list(tx_ids),
                "valid_until": valid_until,
                "expires_ms": now + self.keep_ms,
            }
            record_key = _record_key(identity, key)
            self.store.write_local({record_key: encode(kept), _due_key(kept["expires_ms"], record_key): b""})
        self.sweep()
        return kept

    def sweep(self, limit: int = SWEEP_MAX) -> int:
        """Forget up to `limit` records that expired by now, oldest first; the number of index entries read.

        A record whose key was used again after it expired (a new record, due later) stays."""
        now = self.clock()
        due = list(islice(self.store.scan_local(_DUE, _DUE + (now + 1).to_bytes(8, "big")), limit))
        forget: dict[bytes, bytes | None] = {}
        for due_key, _ in due:
            forget[due_key] = None
            record_key = _RECORD + due_key[len(_DUE) + 9 :]
            raw = self.store.get_local(record_key)
            if raw is not None and _expiry(decode(raw)) <= now:
                forget[record_key] = None
        if forget:
            self.store.write_local(forget)
        return len(due)


def _expiry(kept: KeptWrite) -> int:
    """When a record expires; one kept before keys expired has no time, and is expired."""
    return int(kept.get("expires_ms", 0))
