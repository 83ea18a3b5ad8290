"""The chain of custody of each lot: an index of the stock journal by lot, kept in each block's write batch.

Every journal entry that moves stock of a named lot (its receipt at a
warehouse, transfers out and in, the shipment of an order, a return taken
back) gets one index entry, in the batch of the block that posted it:

    lt/<len:2><lot><len:2><sku><height:8><tx index:4><journal key>  -> journal key

Lots are per SKU, so a lot's entries are grouped by SKU, and each SKU's
steps come in the order the ledger made them (block, then place in the
block). A trace reads one key range, however long the journal is; the step
itself is the journal entry in the state, which never changes once posted.
Stock without a lot (lot "") is not indexed. A node that joined by state
sync rebuilds the index from the journal it loaded (`compute_lot_entry`,
`node.reindex`); steps of one block below its snapshot then come in journal
key order, as the blocks that placed them are not held there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contracts import keys
from ledger.store import Store
from node.changes import BlockChanges

_PREFIX = b"lt/"
_LAST_INDEX = 2**32 - 1
"""The tx index of an entry the ledger posted by itself (after every tx of its block)."""


def _part(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def lot_prefix(lot: str, sku: str | None = None) -> bytes:
    """The key range of a lot's steps (of one SKU, or of every SKU)."""
    return _PREFIX + _part(lot) + (b"" if sku is None else _part(sku))


def compute_lot_entry(entry: dict[str, Any], tx_index: int) -> tuple[bytes, bytes] | None:
    """The index entry of one journal entry (None for stock without a lot)."""
    if not entry["lot"]:
        return None
    journal = keys.journal_key(entry["location"], entry["sku"], entry["seq"]).encode()
    place = entry["height"].to_bytes(8, "big") + tx_index.to_bytes(4, "big")
    return lot_prefix(entry["lot"], entry["sku"]) + place + journal, journal


def compute_lot_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """Index entries of the journal entries the block posted."""
    places = {tx.id: index for index, tx in enumerate(changes.block.txs)}
    writes: dict[bytes, bytes | None] = {}
    for old, entry in changes.updated(keys.journal_prefix()):
        if old is not None:
            continue
        indexed = compute_lot_entry(entry, places.get(entry["tx_id"], _LAST_INDEX))
        if indexed is not None:
            writes[indexed[0]] = indexed[1]
    return writes


def scan_lot(store: Store, lot: str, sku: str | None, after: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    """(index key, journal key) of a lot's steps, in order, after the index key `after` (a page's cursor)."""
    prefix = lot_prefix(lot, sku)
    start = prefix if after is None or not after.startswith(prefix) else after + b"\x00"
    return store.scan_derived(start, prefix + b"\xff" * 9)
