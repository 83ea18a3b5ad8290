"""Stock below its safety level: which SKUs at which locations have fewer units available than their safety stock.

Each block's write batch keeps an entry for every stock record that is below
its (non-zero) safety stock, and deletes it when the record comes back up
(`ls/<location>\\0<sku>` -> [available, safety]), so `/metrics` and the alert
rule read the SKUs short now, not every stock record. A node that joins by
state sync finds them once in the state (`node.reindex`).
"""

from __future__ import annotations

from itertools import islice
from typing import Any, NamedTuple

from contracts import keys
from contracts.inventory import compute_available
from ledger.encoding import decode, encode
from ledger.store import Store
from node.changes import BlockChanges

MAX_LISTED = 1000
"""Most short SKUs `read_low_stock` answers (the metric's series and the rule's subjects stay bounded)."""

_LOW = b"ls/"


class LowStock(NamedTuple):
    location: str
    sku: str
    available: int
    safety: int


def is_below_safety(stock: dict[str, Any]) -> bool:
    """Whether a stock record's available units are below its (non-zero) safety stock."""
    return int(stock["safety"]) > 0 and compute_available(stock) < int(stock["safety"])


def _key(location: str, sku: str) -> bytes:
    return _LOW + location.encode() + b"\x00" + sku.encode()


def compute_low_stock_entry(stock: dict[str, Any]) -> dict[bytes, bytes | None]:
    """The entry of one stock record: present while it is below its safety stock."""
    key = _key(stock["location"], stock["sku"])
    return {key: encode([compute_available(stock), int(stock["safety"])]) if is_below_safety(stock) else None}


def compute_low_stock_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """The entries of the stock records the block changed (kept, changed or deleted)."""
    writes: dict[bytes, bytes | None] = {}
    for old, new in changes.updated(keys.stock_prefix()):
        if is_below_safety(new) or (old is not None and is_below_safety(old)):
            writes.update(compute_low_stock_entry(new))
    return writes


def read_low_stock(store: Store, limit: int = MAX_LISTED) -> list[LowStock]:
    """The SKUs below their safety stock now, by location and SKU (at most `limit`)."""
    found = []
    for key, raw in islice(store.scan_derived(_LOW, b"ls0"), limit):
        location, sku = key[len(_LOW) :].decode().split("\x00", 1)
        available, safety = decode(raw)
        found.append(LowStock(location, sku, int(available), int(safety)))
    return found
