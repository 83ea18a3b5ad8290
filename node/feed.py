"""The change feed: every change a client may see, in commit order, each with a cursor.

At commit the node compares the records a block wrote with what they were
before (`BlockChanges`) and writes one event per change, in the block's write
batch, so the feed always matches the state and a node killed at any instant
loses no event and keeps none twice:

- `order.status`: an order entered a status (its creation included), with who moved it and why;
- `fulfilment.status`: a fulfilment was allocated, released, picked, shipped, delivered, declined, cancelled;
- `stock.movement`: one stock journal entry (receipt, reservation, shipment, transfer, adjustment, ...);
- `invoice.issued`: an invoice or credit note was issued.

Each event names its block (`height`, `block` hash) and the tx that made the
change, or `tx_id` null when the ledger made it by itself at the start of the
block (a payment timeout cancelling an order). Events of one block are in tx
order, the ledger's own first. A cursor is `height * 2**24 + n` (n: the
event's place in its block) as a decimal string: `after=0` is the start, and
a cursor stays valid across restarts. Each event is stored once, in the
global feed (`e/<cursor>`), read by operators and auditors; each
organisation it belongs to has an entry `eo/<org>\\0<cursor>` holding only
the event's type, so a store's or channel's page reads its own entries
however busy the other organisations are, and the feed, the largest thing a
node writes, is not written again per organisation.
A webhook outbox follows the feed by keeping the last cursor it delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contracts import keys
from contracts.queries import to_json
from ledger.encoding import decode, encode_unchecked
from ledger.errors import StoreCorrupted
from ledger.store import Store
from node.changes import BlockChanges
from node.visibility import compute_fulfilment_orgs, compute_invoice_orgs, compute_order_orgs, get_location_org

EVENT_TYPES = ("order.status", "fulfilment.status", "stock.movement", "invoice.issued")
"""Every type of event."""

PER_BLOCK = 2**24
"""Cursor space of one block: more events than any block can make."""

_ALL = b"e/"
_ORG = b"eo/"


@dataclass(frozen=True)
class Event:
    """One change, before it has its cursor."""

    type: str
    tx_id: bytes | None
    orgs: list[str]
    data: dict[str, Any]


def _cursor_key(cursor: int) -> bytes:
    return cursor.to_bytes(8, "big")


def _org_prefix(org: str) -> bytes:
    return _ORG + org.encode() + b"\x00"


def compute_feed_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """The derived entries holding the events of the block `changes` describes."""
    block = changes.block
    position = {tx.id: index for index, tx in enumerate(block.txs)}
    events = sorted(_compute_events(changes), key=lambda e: -1 if e.tx_id is None else position.get(e.tx_id, -1))
    writes: dict[bytes, bytes | None] = {}
    block_hash = block.hash()
    for n, event in enumerate(events):
        cursor = block.height * PER_BLOCK + n
        record = encode_unchecked(
            {
                "cursor": str(cursor),
                "type": event.type,
                "height": block.height,
                "block": block_hash,
                "time_ms": block.header.timestamp_ms,
                "tx_id": event.tx_id,
                "orgs": event.orgs,
                "data": event.data,
            }
        )
        writes[_ALL + _cursor_key(cursor)] = record
        for org in event.orgs:
            writes[_org_prefix(org) + _cursor_key(cursor)] = event.type.encode()
    return writes


def _compute_events(changes: BlockChanges) -> Iterator[Event]:
    """Every event of the block, grouped by kind of record, each group in key order."""
    read = changes.read
    for old, new in changes.updated(keys.order_key("")):
        seen = len(old["history"]) if old else 0
        orgs = compute_order_orgs(read, new)
        for step in new["history"][seen:]:
            data = {
                "order_id": new["order_id"],
                "channel": new["channel"],
                "external_ref": new["external_ref"],
                "from": step["from"],
                "to": step["to"],
                "by": step["by"],
                "reason": step["reason"],
            }
            yield Event("order.status", step["tx_id"], orgs, data)
    for old, new in changes.updated(keys.fulfilment_key("")):
        seen = len(old["events"]) if old else 0
        orgs = compute_fulfilment_orgs(read, new)
        for step in new["events"][seen:]:
            data = {
                "fulfilment_id": new["fulfilment_id"],
                "order_id": new["order_id"],
                "location": new["location"],
                "status": step["status"],
                "by": step["by"],
            }
            yield Event("fulfilment.status", step["tx_id"], orgs, data)
    for old, new in changes.updated("journal/"):
        if old is None:
            org = get_location_org(read, new["location"])
            yield Event("stock.movement", new["tx_id"], [org] if org else [], to_json(new))
    for old, new in changes.updated(keys.invoice_prefix()):
        if old is None:
            data = {
                "number": new["number"],
                "order_id": new["order_id"],
                "issuer": new["issuer"],
                "credit_note": new["credit_note"],
                "currency": new["currency"],
                "total": new["total"],
            }
            yield Event("invoice.issued", new["tx_id"], compute_invoice_orgs(read, new), data)


def get_feed_start(base_height: int) -> int:
    """The cursor after which a node whose lowest block is `base_height` holds every event: 0 with the full
    history, the last cursor of its snapshot's block after state sync (that block's events were never
    derived here)."""
    return 0 if base_height <= 1 else (base_height + 1) * PER_BLOCK - 1


def read_events(
    store: Store, org: str | None, after: int, limit: int, types: frozenset[str] | None = None, scan: int = 5000
) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` events after cursor `after` (those of organisation `org`, or all; of `types`, or all), as
    JSON, and the cursor of the last event read (`after` if none). At most `scan` events are read."""
    prefix = _ALL if org is None else _org_prefix(org)
    events = []
    last = after
    for read, (key, value) in enumerate(store.scan_derived(prefix + _cursor_key(after + 1), prefix + b"\xff" * 9), 1):
        cursor = key[-8:]
        last = int.from_bytes(cursor, "big")
        if org is None:
            event = decode(value, check=False)
        elif types is None or value.decode() in types:
            event = decode(_read_global(store, cursor), check=False)
        else:
            event = None
        if event is not None and (types is None or event["type"] in types):
            del event["orgs"]
            events.append(to_json(event))
        if len(events) == limit or read == scan:
            break
    return events, last


def _read_global(store: Store, cursor: bytes) -> bytes:
    """The event an organisation's entry points at (written in the same batch, so always there)."""
    raw = store.get_derived(_ALL + cursor)
    if raw is None:
        raise StoreCorrupted(f"the feed has an organisation's entry at {int.from_bytes(cursor, 'big')} but no event")
    return raw


class CommitSignal:
    """Wakes every waiter when a block commits (long-polls of the feed)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return at the next commit, or after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return
