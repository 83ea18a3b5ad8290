"""Idempotency keys in the world state: one action per signer and key, whichever node signed it.

A client that may send a request more than once (a retry after a timeout,
the same request to another node) names it with a key. The key travels in
the tx as a *keyed nonce*: `derive_keyed_nonce(signer, key)`, a negative
nonce that every node, and the client, derives alike; a non-negative nonce
is an ordinary one and names no key. Two txs with the same signer and keyed
nonce are one action, even when their ids differ (another node signed the
same request with another `valid_until`):

- the first keyed tx a block executes records its signer, nonce, the hash of
  its request (`compute_request_hash`: kind and payload) and its id under
  `idem/<signer>/<nonce>`, whatever its receipt (a request refused by a rule
  stays refused for that key);
- a later tx with the same signer and nonce is not run: it is answered
  `duplicate_request` if its request hash is the recorded one, and
  `idempotency_conflict` otherwise; both receipts name the first tx in
  `result.tx_id` (hex), so whoever waits for the later tx can answer the
  first tx's result.

A record is kept `KEEP_MS` of block time from the first tx; after that it
reads as absent and the key names a new action. Expired records are deleted
through an index by the minute they expire, `idem-due/<minute:012d>/<signer>/<nonce>`,
and a cursor, `idem-pruned`, the last minute whose records are all deleted
(written with the first record: a chain that never saw a key writes nothing).
Each block goes on from the cursor over at most `PRUNE_MINUTES` minutes and
`PRUNE_MAX` records, reading one minute's prefix at a time: an expired record
is already inert, so pruning only bounds the state, and its work per block is
bounded however many keys expire at once or however long the chain was idle.

The records are world state, under the state commitment and in every
snapshot, so every node, a state-synced one included, gives the same verdict
on every keyed tx.
"""

from __future__ import annotations

import hashlib
from itertools import islice
from typing import Any, TypedDict

from ledger.block import Receipt
from ledger.encoding import MIN_INT, encode
from ledger.state import StateView
from ledger.tx import Tx

KEEP_MS = 24 * 60 * 60 * 1000
"""How long a key names one action, in block time from its first tx (24 hours)."""

PRUNE_MAX = 1_000
"""Most expired records one block deletes."""

PRUNE_MINUTES = 60
"""Most minutes of expiries one block goes through (a chain idle for a day catches up in 24 blocks)."""

DUPLICATE_REQUEST = "duplicate_request"
"""Receipt code of a keyed tx that repeats its key's first request."""

IDEMPOTENCY_CONFLICT = "idempotency_conflict"
"""Receipt code of a keyed tx whose request differs from its key's first request."""

_RECORD = "idem/"
_DUE = "idem-due/"
_CURSOR = "idem-pruned"
_MINUTE_MS = 60_000


class KeyRecord(TypedDict):
    """What the ledger keeps of a key's first tx."""

    request: bytes
    """`compute_request_hash` of the first tx."""
    tx_id: bytes
    """The first tx's id."""
    expires_ms: int
    """Block time from which the key is free again."""


def derive_keyed_nonce(signer: str, key: str) -> int:
    """The nonce that names `key` for `signer`: negative, the same for the same signer and key."""
    digest = hashlib.sha256(f"{signer}\x00{key}".encode()).digest()
    return -1 - (int.from_bytes(digest[:8], "big") >> 1)


def is_keyed(nonce: int) -> bool:
    """Whether a nonce names an idempotency key."""
    return MIN_INT <= nonce < 0


def compute_request_hash(kind: str, payload: dict[str, Any]) -> bytes:
    """What two txs must share to be the same request: their kind and payload."""
    return hashlib.sha256(encode({"kind": kind, "payload": payload})).digest()


def _record_key(signer: str, nonce: int) -> str:
    return f"{_RECORD}{signer}/{nonce}"


def get_key_record(state: StateView, signer: str, nonce: int, now_ms: int) -> KeyRecord | None:
    """The record of `signer`'s keyed `nonce`, unless it never was or expired by `now_ms`."""
    record: KeyRecord | None = state.get(_record_key(signer, nonce))
    if record is None or record["expires_ms"] <= now_ms:
        return None
    return record


def answer_repeat(state: StateView, tx: Tx, time_ms: int) -> Receipt | None:
    """The receipt of a keyed tx whose key is recorded (`duplicate_request` or `idempotency_conflict`); None
    for a tx to run."""
    if not is_keyed(tx.nonce):
        return None
    record = get_key_record(state, tx.signer, tx.nonce, time_ms)
    if record is None:
        return None
    first = record["tx_id"].hex()
    if record["request"] == compute_request_hash(tx.kind, tx.payload):
        return Receipt(tx.id, False, DUPLICATE_REQUEST, f"the same request as tx {first}", {"tx_id": first})
    return Receipt(
        tx.id,
        False,
        IDEMPOTENCY_CONFLICT,
        f"tx {first} used this idempotency key for another request",
        {"tx_id": first},
    )


def record_key(state: StateView, tx: Tx, time_ms: int) -> None:
    """Record a keyed tx as its key's first (a tx that is not keyed records nothing)."""
    if not is_keyed(tx.nonce):
        return
    expires_ms = time_ms + KEEP_MS
    key = _record_key(tx.signer, tx.nonce)
    record: KeyRecord = {
        "request": compute_request_hash(tx.kind, tx.payload),
        "tx_id": tx.id,
        "expires_ms": expires_ms,
    }
    state.put(key, record)
    minute = expires_ms // _MINUTE_MS
    state.put(f"{_due_prefix(minute)}{tx.signer}/{tx.nonce}", key)
    if state.get(_CURSOR) is None:
        state.put(_CURSOR, minute - 1)


def prune_keys(state: StateView, time_ms: int) -> int:
    """Delete the records expired by `time_ms` that the cursor reaches within this block's bounds; the number
    deleted. A record written again since (its key used anew after it expired) is due later and stays."""
    last_due = time_ms // _MINUTE_MS - 1
    cursor: int | None = state.get(_CURSOR)
    if cursor is None:
        return 0
    pruned = 0
    for minute in range(cursor + 1, min(last_due, cursor + PRUNE_MINUTES) + 1):
        budget = PRUNE_MAX - pruned
        due = list(islice(state.scan(_due_prefix(minute)), budget + 1))
        for due_key, record_key in due[:budget]:
            state.delete(due_key)
            if get_key_record(state, *_split(record_key), time_ms) is None:
                state.delete(record_key)
        pruned += min(len(due), budget)
        if len(due) > budget:
            break
        state.put(_CURSOR, minute)
        if pruned == PRUNE_MAX:
            break
    return pruned


def _due_prefix(minute: int) -> str:
    return f"{_DUE}{minute:012d}/"


def _split(record_key: str) -> tuple[str, int]:
    signer, _, nonce = record_key[len(_RECORD) :].rpartition("/")
    return signer, int(nonce)
