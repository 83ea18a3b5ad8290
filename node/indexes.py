"""Secondary indexes of orders, kept in each block's write batch, so a list never scans the state.

Orders are listed by reader scope, dimension and value, sorted by time then
order number. The orders of one list at one time share one entry holding
their order numbers, sorted:

    o/<scope>\\0<dimension>\\0<value>\\0<time:8>  -> [order id, ...]

- scope: `*` (operators and auditors) and each organisation the order belongs to
  (`node.visibility`), so a store's or channel's list reads only its own entries;
- dimensions: `created` and `updated` (value empty; time is created or last
  updated), `status`, `channel`, `location` (each fulfilment's; time is created).

Times are block times, so the orders one block creates or changes fall in
one entry per list they join: a block writes an entry per list it touches,
not one per order and list. A list reads an entry as the keys
`<entry key>\\0<order id>` in turn, one per order, so a page's cursor is such a
key, as when every order had an entry of its own, and cursors given then read
on. A page of orders by status or by date reads `limit` orders from one key
range, whatever the number of orders (an entry holds at most one block's
orders); filters on other fields than the chosen dimension skip orders,
within the page's scan bound (`node.api.pages`).

When a block changes an order (or its fulfilments), the lists it was in are
computed from the order as the committed state holds it before the block, and
the lists it is in now from the order after: its number leaves the former and
joins the latter. The one thing the state does not say is the block time of
an order's last change (its `updated` time): `om/<order id>` keeps it, once
the order has changed after the block that created it (until then it is the
creation time). A node that joined by state sync has no blocks to derive the
lists from: it rebuilds them from the state it loaded (`compute_order_lists`
over every order, `node.reindex`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from contracts import keys
from ledger.encoding import decode, encode, encode_unchecked
from ledger.store import Store
from node.changes import BlockChanges
from node.visibility import Read, compute_order_orgs

ALL_SCOPE = "*"
"""The scope of readers of every organisation."""

DIMENSIONS = ("created", "updated", "status", "channel", "location")
"""What orders are listed by."""

_ENTRY = b"o/"
_META = b"om/"
_TIME_MAX = 2**64 - 1


@functools.lru_cache(maxsize=4096)
def _entry_prefix(scope: str, dimension: str, value: str) -> bytes:
    return _ENTRY + b"\x00".join(part.encode() for part in (scope, dimension, value)) + b"\x00"


def _meta_key(order_id: str) -> bytes:
    return _META + order_id.encode()


@dataclass(frozen=True)
class OrderMeta:
    """What lists show of an order besides its record: whom it belongs to, where it is served from, when it last
    changed."""

    orgs: list[str]
    locations: list[str]
    updated_ms: int


def compute_order_place(read: Read, order: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The organisations an order belongs to (`node.visibility`) and the locations of its fulfilments, as the
    state `read` reads holds them, sorted."""
    fulfilments = (read(keys.fulfilment_key(fulfilment_id)) for fulfilment_id in order["fulfilments"])
    locations = sorted({str(f["location"]) for f in fulfilments if f is not None})
    return compute_order_orgs(read, order), locations


def get_updated_ms(store: Store, order: dict[str, Any]) -> int:
    """The block time of an order's last change, as the indexes of `store` know it."""
    raw = store.get_derived(_meta_key(order["order_id"]))
    return int(order["created_ms"]) if raw is None else int(decode(raw))


def get_order_meta(store: Store, read: Read, order: dict[str, Any]) -> OrderMeta:
    """What lists show of an order as the state `read` reads holds it and the indexes of `store` know it."""
    return OrderMeta(*compute_order_place(read, order), get_updated_ms(store, order))


def compute_order_lists(order: dict[str, Any], meta: OrderMeta) -> set[bytes]:
    """The keys of the entries an order is in."""
    created = int(order["created_ms"])
    points = [
        ("created", "", created),
        ("updated", "", meta.updated_ms),
        ("status", order["status"], created),
        ("channel", order["channel"], created),
        *(("location", location, created) for location in meta.locations),
    ]
    return {
        _entry_prefix(scope, dimension, value) + time_ms.to_bytes(8, "big")
        for scope in (ALL_SCOPE, *meta.orgs)
        for dimension, value, time_ms in points
    }


def compute_meta_entry(order: dict[str, Any], updated_ms: int) -> dict[bytes, bytes | None]:
    """The record of an order's last change, none while that is its creation (block times never go back, so a
    record once written never has to go)."""
    if updated_ms == int(order["created_ms"]):
        return {}
    return {_meta_key(order["order_id"]): encode(updated_ms)}


Moves = dict[bytes, tuple[set[str], set[str]]]
"""Per entry key: the order ids that join it and those that leave it."""


def add_moves(moves: Moves, order_id: str, before: set[bytes], after: set[bytes]) -> None:
    """Note an order leaving the entries it was in (`before`) for those it is in now (`after`)."""
    for key in after - before:
        moves.setdefault(key, (set(), set()))[0].add(order_id)
    for key in before - after:
        moves.setdefault(key, (set(), set()))[1].add(order_id)


def compute_moves_writes(moves: Moves, read: Callable[[bytes], bytes | None]) -> dict[bytes, bytes | None]:
    """The entries in `moves`: the ids `read` finds there, less those leaving, plus those joining (an entry left
    empty is deleted)."""
    writes: dict[bytes, bytes | None] = {}
    for key, (joining, leaving) in sorted(moves.items()):
        raw = read(key)
        ids = (set() if raw is None else set(decode(raw, check=False))) - leaving | joining
        writes[key] = encode_unchecked(sorted(ids)) if ids else None
    return writes


def compute_index_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """The entries the block's orders (and those whose fulfilments it changed) leave and join, and their last
    change."""
    order_ids = {new["order_id"] for _, new in changes.updated(keys.order_key(""))}
    order_ids.update(new["order_id"] for _, new in changes.updated(keys.fulfilment_key("")))
    store = changes.store
    time_ms = changes.block.header.timestamp_ms
    moves: Moves = {}
    writes: dict[bytes, bytes | None] = {}
    for order_id in sorted(order_ids):
        order = changes.read(keys.order_key(order_id))
        if order is None:
            continue
        after = compute_order_lists(order, OrderMeta(*compute_order_place(changes.read, order), time_ms))
        old = changes.old(keys.order_key(order_id))
        before = set() if old is None else compute_order_lists(old, get_order_meta(store, changes.old, old))
        add_moves(moves, order_id, before, after)
        writes.update(compute_meta_entry(order, time_ms))
    writes.update(compute_moves_writes(moves, store.get_derived))
    return writes


@dataclass(frozen=True)
class OrderRange:
    """One index range to walk: a scope, a dimension and its value, between two times."""

    scope: str
    dimension: str
    value: str = ""
    since_ms: int = 0
    until_ms: int = _TIME_MAX
    """Exclusive."""

    @property
    def prefix(self) -> bytes:
        return _entry_prefix(self.scope, self.dimension, self.value)


def scan_orders(store: Store, query: OrderRange, after: bytes | None) -> Iterator[tuple[bytes, str]]:
    """(index key, order id) of the orders in `query`'s range, oldest first, from the first key past `after`."""
    prefix = query.prefix
    start = prefix + query.since_ms.to_bytes(8, "big")
    if after is not None:
        start = max(start, after[: len(prefix) + 8])
    stop = prefix + min(query.until_ms, _TIME_MAX).to_bytes(8, "big")
    for key, value in store.scan_derived(start, stop):
        for order_id in decode(value, check=False):
            entry = key + b"\x00" + order_id.encode()
            if after is None or entry > after:
                yield entry, order_id
