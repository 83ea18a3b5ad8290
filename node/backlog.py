"""The fulfilment backlog: how many fulfilments each location has yet to ship, kept at commit.

A fulfilment is open while it is `allocated`, `released` or `picked`: the
location owes it. Each block's write batch moves the count of every location
whose fulfilments it opened or closed (`fb/<location>` -> count, absent at 0), so `/metrics`
reads one small entry per location instead of every fulfilment ever made. A
node that joins by state sync counts them once from the state
(`node.reindex`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from contracts import keys
from ledger.encoding import decode, encode
from ledger.store import Store
from node.changes import BlockChanges

OPEN = frozenset({"allocated", "released", "picked"})
"""Fulfilment states in which the location has goods to send."""

_COUNT = b"fb/"


def _key(location: str) -> bytes:
    return _COUNT + location.encode()


def is_open(fulfilment: dict[str, Any] | None) -> bool:
    return fulfilment is not None and fulfilment["status"] in OPEN


def compute_backlog_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """The counts of the locations whose backlog the block changed."""
    delta: Counter[str] = Counter()
    for old, new in changes.updated(keys.fulfilment_key("")):
        delta[new["location"]] += is_open(new) - is_open(old)
    writes: dict[bytes, bytes | None] = {}
    for location, moved in sorted(delta.items()):
        if moved:
            raw = changes.store.get_derived(_key(location))
            count = (0 if raw is None else int(decode(raw))) + moved
            writes[_key(location)] = encode(count) if count else None
    return writes


def compute_counts_writes(counts: Counter[str]) -> dict[bytes, bytes | None]:
    """The entries of counts made from the state (a rebuild)."""
    return {_key(location): encode(count) for location, count in sorted(counts.items()) if count}


def read_backlog(store: Store) -> dict[str, int]:
    """Open fulfilments per location (those with none are left out)."""
    return {key[len(_COUNT) :].decode(): int(decode(raw)) for key, raw in store.scan_derived(_COUNT, b"fb0")}
