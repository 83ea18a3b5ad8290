"""Secondary indexes of orders, kept in each block's write batch, so a list never scans the state.

Every order has one index entry per (reader scope, dimension) it falls in,
sorted by time then order number:

    o/<scope>\\0<dimension>\\0<value>\\0<time:8>\\0<order id>  -> empty

- scope: `*` (operators and auditors) and each organisation the order belongs to
  (`node.visibility`), so a store's or channel's list reads only its own entries;
- dimensions: `created` and `updated` (value empty; time is created or last
  updated), `status`, `channel`, `location` (each fulfilment's; time is created).

`om/<order id>` keeps the keys an order has now, so when a block changes the
order its old entries are deleted in the same batch. A page of orders by
status or by date reads `limit` entries from one key range, whatever the
number of orders; filters on other fields than the chosen dimension skip
entries, within the page's scan bound (`node.api.pages`). A node that joined
by state sync has no blocks to derive them from: it rebuilds them from the
state it loaded (`compute_order_index` over every order, `node.reindex`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contracts import keys
from ledger.encoding import decode, encode
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


def _entry_prefix(scope: str, dimension: str, value: str) -> bytes:
    return _ENTRY + b"\x00".join(part.encode() for part in (scope, dimension, value)) + b"\x00"


def _meta_key(order_id: str) -> bytes:
    return _META + order_id.encode()


def _entry_key(scope: str, dimension: str, value: str, time_ms: int, order_id: str) -> bytes:
    return _entry_prefix(scope, dimension, value) + time_ms.to_bytes(8, "big") + b"\x00" + order_id.encode()


def compute_order_entries(order: dict[str, Any], orgs: list[str], locations: list[str], updated_ms: int) -> list[bytes]:
    created = int(order["created_ms"])
    points = [
        ("created", "", created),
        ("updated", "", updated_ms),
        ("status", order["status"], created),
        ("channel", order["channel"], created),
        *(("location", location, created) for location in locations),
    ]
    return [
        _entry_key(scope, dimension, value, time_ms, order["order_id"])
        for scope in (ALL_SCOPE, *orgs)
        for dimension, value, time_ms in points
    ]


def compute_order_index(read: Read, order: dict[str, Any], updated_ms: int) -> dict[bytes, bytes]:
    """An order's index entries and the meta record listing them, as of the state `read` reads."""
    fulfilments = [read(keys.fulfilment_key(fid)) for fid in order["fulfilments"]]
    locations = sorted({f["location"] for f in fulfilments if f is not None})
    orgs = compute_order_orgs(read, order)
    entries = compute_order_entries(order, orgs, locations, updated_ms)
    meta = {"keys": entries, "orgs": orgs, "locations": locations, "updated_ms": updated_ms}
    return {**dict.fromkeys(entries, b""), _meta_key(order["order_id"]): encode(meta)}


def compute_index_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """Index entries to add and delete for every order the block changed (or whose fulfilments it changed)."""
    order_ids = {new["order_id"] for _, new in changes.updated(keys.order_key(""))}
    order_ids.update(new["order_id"] for _, new in changes.updated(keys.fulfilment_key("")))
    writes: dict[bytes, bytes | None] = {}
    for order_id in sorted(order_ids):
        order = changes.read(keys.order_key(order_id))
        if order is None:
            continue
        index = compute_order_index(changes.read, order, changes.block.header.timestamp_ms)
        old_meta = changes.store.get_derived(_meta_key(order_id))
        for stale in set(decode(old_meta)["keys"]) - index.keys() if old_meta else ():
            writes[stale] = None
        writes.update(index)
    return writes


@dataclass(frozen=True)
class OrderMeta:
    """What the indexes know of an order."""

    orgs: list[str]
    locations: list[str]
    updated_ms: int


def get_order_meta(store: Store, order_id: str) -> OrderMeta | None:
    """The organisations, locations and last update of an order as last indexed (None if never indexed)."""
    raw = store.get_derived(_meta_key(order_id))
    if raw is None:
        return None
    meta = decode(raw)
    return OrderMeta(list(meta["orgs"]), list(meta["locations"]), int(meta["updated_ms"]))


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
        start = max(start, after + b"\x00")
    stop = prefix + min(query.until_ms, _TIME_MAX).to_bytes(8, "big")
    for key, _ in store.scan_derived(start, stop):
        yield key, key[len(prefix) + 9 :].decode()
