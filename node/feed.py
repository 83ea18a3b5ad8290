"""The change feed: every change a client may see, in commit order, each with a cursor.

At commit the node compares the records a block wrote with what they were
before (`BlockChanges`) and writes one event per change, in the block's write
batch, so the feed always matches the state and a node killed at any instant
loses no event and keeps none twice:

- `order.created`: a new order, with its lines, total and status (followed by its `order.status` to `created`);
- `order.rejected`: an `order.create` (or an order of an `order.import`) the contracts refused, with the
  channel's reference and the reason (`code`, `message`); no order exists, so it has no `order_id`;
- `order.status`: an order entered a status (its creation included), with who moved it and why: held for
  review (`on_hold`), released, intercepted, shipped, cancelled, ...;
- `order.reviewed`: an operator decided on a held order (`approved` or `rejected`, with the note);
- `fulfilment.status`: a fulfilment was allocated, released, picked, shipped, delivered, declined, cancelled;
- `payment.authorized`, `payment.captured`, `payment.refunded`: a payment fact recorded on an order;
- `return.status`: a return was requested or changed status (received, partially received, cancelled, expired);
- `transfer.status`: a stock transfer left (`in_transit`), was received or refused;
- `stock.movement`: one stock journal entry (receipt, reservation, shipment, transfer, adjustment, ...);
- `stock.low`: a SKU's available stock at a location fell below its safety stock (once per fall);
- `invoice.issued`: an invoice or credit note (`credit_note` true) was issued.

Besides these, `alert` events are written by the node itself, outside any
block (`node.notify.alerts`): they are this node's own, not the ledger's,
and each node's feed has its own.

Each event names its block (`height`, `block` hash) and the tx that made the
change, or `tx_id` null when the ledger made it by itself at the start of the
block (a payment timeout cancelling an order). Events of one block are in tx
order, the ledger's own first. A cursor is `height * 2**24 + n` (n: the
event's place in its block) as a decimal string: `after=0` is the start, and
a cursor stays valid across restarts.

The events of a block are stored `CHUNK` at a time, in one entry per chunk
keyed by the cursor of its last event (`e/<cursor>` -> the chunk's events,
each encoded on its own), so a block writes a few dozen entries rather than
one per event, and a reader after cursor `c` finds the chunk holding `c + 1`
by seeking to the first key at or past it. Each organisation a chunk's events
belong to has one entry under the same cursor, `eo/<org>\\0<cursor>` -> the
cursor and type of each of its events there, so a store's or channel's page
reads its own entries however busy the other organisations are, and decodes
only the events it answers. A node's own events are chunks of one. Entries of
the earlier layout (one event per `e/` entry, its type alone per `eo/` entry)
read as chunks of one, so a node's feed reads on across an upgrade.
A webhook outbox follows the feed by keeping the last cursor it delivered.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from contracts import keys
from contracts.inventory import compute_available
from contracts.queries import to_json
from ledger.block import Receipt
from ledger.encoding import decode, encode_unchecked
from ledger.errors import StoreCorrupted
from ledger.genesis import Genesis
from ledger.store import Store
from ledger.tx import Tx
from node.changes import BlockChanges
from node.lowstock import is_below_safety
from node.visibility import (
    compute_fulfilment_orgs,
    compute_invoice_orgs,
    compute_order_orgs,
    compute_transfer_orgs,
    get_location_org,
    get_order_orgs,
)

BLOCK_EVENT_TYPES = (
    "order.created",
    "order.rejected",
    "order.status",
    "order.reviewed",
    "fulfilment.status",
    "payment.authorized",
    "payment.captured",
    "payment.refunded",
    "return.status",
    "transfer.status",
    "stock.movement",
    "stock.low",
    "invoice.issued",
)
"""Every type of event a block makes (the same on every node)."""

ALERT_TYPE = "alert"
"""The type of the events a node writes by itself (`node.notify.alerts`)."""

EVENT_TYPES = (*BLOCK_EVENT_TYPES, ALERT_TYPE)
"""Every type of event."""

ORDER_KINDS = frozenset({"order.create", "order.import"})
"""Tx kinds that place orders, whose refusals are `order.rejected` events."""

PER_BLOCK = 2**24
"""Cursor space of one block: more events than any block can make."""

NODE_EVENTS_FROM = PER_BLOCK // 2
"""Where in the cursor space of the head block the node's own events go (after any event a block makes)."""

CHUNK = 128
"""Most events in one entry of the feed."""

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


def compute_feed_writes(
    changes: BlockChanges, receipts: Sequence[Receipt], genesis: Genesis
) -> dict[bytes, bytes | None]:
    """The derived entries holding the events of the block `changes` describes (whose txs had `receipts`)."""
    block = changes.block
    position = {tx.id: index for index, tx in enumerate(block.txs)}
    found = itertools.chain(_compute_events(changes), _compute_rejections(block.txs, receipts, genesis))
    events = sorted(found, key=lambda e: -1 if e.tx_id is None else position.get(e.tx_id, -1))
    block_hash = block.hash()
    records = [
        {
            "cursor": str(block.height * PER_BLOCK + n),
            "type": event.type,
            "height": block.height,
            "block": block_hash,
            "time_ms": block.header.timestamp_ms,
            "tx_id": event.tx_id,
            "orgs": event.orgs,
            "data": event.data,
        }
        for n, event in enumerate(events)
    ]
    writes: dict[bytes, bytes | None] = {}
    for start in range(0, len(records), CHUNK):
        writes.update(compute_chunk_writes(records[start : start + CHUNK]))
    return writes


def compute_chunk_writes(records: Sequence[dict[str, Any]]) -> dict[bytes, bytes | None]:
    """The derived entries of a chunk of event records of consecutive cursors: the chunk, and the cursor and type
    of each event under each organisation it belongs to (its `orgs`)."""
    key = _cursor_key(int(records[-1]["cursor"]))
    writes: dict[bytes, bytes | None] = {_ALL + key: encode_unchecked([encode_unchecked(r) for r in records])}
    own: dict[str, list[list[Any]]] = {}
    for record in records:
        for org in record["orgs"]:
            own.setdefault(org, []).append([int(record["cursor"]), record["type"]])
    for org, entries in own.items():
        writes[_org_prefix(org) + key] = encode_unchecked(entries)
    return writes


def write_node_event(store: Store, event_type: str, *, orgs: list[str], data: dict[str, Any], time_ms: int) -> int:
    """Append an event of the node's own (not made by a block) to the feed, after every event there; its cursor.

    It takes the next free cursor of the upper half of the head block's space, so it comes after the head
    block's events and before the next block's, and no reader has passed it yet (a reader's cursor is an
    event's). Called on the event loop, between commits."""
    head = store.head()
    height = 0 if head is None else head.height
    first = height * PER_BLOCK + NODE_EVENTS_FROM
    last = store.last_derived(_ALL + _cursor_key(first), _ALL + _cursor_key((height + 1) * PER_BLOCK))
    cursor = first if last is None else int.from_bytes(last[-8:], "big") + 1
    record = {
        "cursor": str(cursor),
        "type": event_type,
        "height": height,
        "block": b"" if head is None else head.block_hash,
        "time_ms": time_ms,
        "tx_id": None,
        "orgs": orgs,
        "data": data,
    }
    store.write_derived(compute_chunk_writes([record]))
    return cursor


def get_last_cursor(store: Store) -> int:
    """The cursor of the newest event of the feed (0 when it is empty)."""
    key = store.last_derived(_ALL, _ALL + b"\xff" * 9)
    return 0 if key is None else int.from_bytes(key[-8:], "big")


def _compute_events(changes: BlockChanges) -> Iterator[Event]:
    """Every event of the block's state changes, grouped by kind of record, each group in key order."""
    yield from _order_events(changes)
    yield from _fulfilment_events(changes)
    yield from _return_events(changes)
    yield from _transfer_events(changes)
    yield from _stock_events(changes)
    yield from _invoice_events(changes)


def _order_events(changes: BlockChanges) -> Iterator[Event]:
    read = changes.read
    for old, new in changes.updated(keys.order_key("")):
        orgs = compute_order_orgs(read, new)
        about = {"order_id": new["order_id"], "channel": new["channel"], "external_ref": new["external_ref"]}
        if old is None:
            lines = [{"sku": line["sku"], "qty": line["qty"], "gross": line["gross"]} for line in new["lines"]]
            created = {"currency": new["currency"], "total": new["total"], "status": new["status"], "lines": lines}
            yield Event("order.created", _first_tx(new["history"]), orgs, {**about, **created})
        seen = len(old["history"]) if old else 0
        for step in new["history"][seen:]:
            data = {**about, "from": step["from"], "to": step["to"], "by": step["by"], "reason": step["reason"]}
            yield Event("order.status", step["tx_id"], orgs, data)
        review = new.get("review")
        if review is not None and (old is None or old.get("review") != review):
            yield Event("order.reviewed", _last_tx(new["history"]), orgs, {**about, **review})
        paid = len(old["payment"]["events"]) if old else 0
        for payment in new["payment"]["events"][paid:]:
            data = {
                **about,
                "currency": new["currency"],
                "amount": payment["amount"],
                "reference": payment["reference"],
            }
            yield Event(f"payment.{payment['kind']}", payment["tx_id"], orgs, data)


def _first_tx(history: list[dict[str, Any]]) -> bytes | None:
    return history[0]["tx_id"] if history else None


def _last_tx(history: list[dict[str, Any]]) -> bytes | None:
    return history[-1]["tx_id"] if history else None


def _fulfilment_events(changes: BlockChanges) -> Iterator[Event]:
    read = changes.read
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
                "carrier": new["carrier"],
                "tracking": new["tracking"],
            }
            yield Event("fulfilment.status", step["tx_id"], orgs, data)


def _return_events(changes: BlockChanges) -> Iterator[Event]:
    for old, new in changes.updated(keys.return_key("")):
        if old is not None and old["status"] == new["status"]:
            continue
        orgs = get_order_orgs(changes.read, new["order_id"]) or []
        lines = [{"sku": line["sku"], "qty": line["qty"], "received": line["received"]} for line in new["lines"]]
        data = {
            "return_id": new["return_id"],
            "order_id": new["order_id"],
            "status": new["status"],
            "reason": new["reason"],
            "lines": lines,
        }
        tx_id = new["tx_id"] if old is None else _find_tx(changes.block.txs, return_id=new["return_id"])
        yield Event("return.status", tx_id, orgs, data)


def _transfer_events(changes: BlockChanges) -> Iterator[Event]:
    for old, new in changes.updated(keys.transfer_key("")):
        seen = len(old["events"]) if old else 0
        orgs = compute_transfer_orgs(changes.read, new)
        lines = [{"sku": line["sku"], "qty": line["qty"]} for line in new["lines"]]
        for step in new["events"][seen:]:
            data = {
                "transfer_id": new["transfer_id"],
                "from": new["from"],
                "to": new["to"],
                "status": step["status"],
                "by": step["by"],
                "lines": lines,
            }
            yield Event("transfer.status", step["tx_id"], orgs, data)


def _stock_events(changes: BlockChanges) -> Iterator[Event]:
    read = changes.read
    for old, new in changes.updated("journal/"):
        if old is None:
            org = get_location_org(read, new["location"])
            yield Event("stock.movement", new["tx_id"], [org] if org else [], to_json(new))
    for old, new in changes.updated(keys.stock_prefix()):
        if is_below_safety(new) and (old is None or not is_below_safety(old)):
            org = get_location_org(read, new["location"])
            latest = read(keys.journal_key(new["location"], new["sku"], new["seq"])) if new["seq"] else None
            if latest is not None and latest["height"] == changes.block.height:
                tx_id = latest["tx_id"]
            else:
                tx_id = _find_tx(changes.block.txs, location=new["location"], sku=new["sku"])
            data = {
                "location": new["location"],
                "sku": new["sku"],
                "available": compute_available(new),
                "safety": new["safety"],
            }
            yield Event("stock.low", tx_id, [org] if org else [], data)


def _find_tx(txs: Sequence[Tx], **fields: str) -> bytes | None:
    """The id of the last tx of the block whose payload names all of `fields` (None: the ledger's own change)."""
    for tx in reversed(txs):
        if all(tx.payload.get(name) == value for name, value in fields.items()):
            return tx.id
    return None


def _invoice_events(changes: BlockChanges) -> Iterator[Event]:
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
            yield Event("invoice.issued", new["tx_id"], compute_invoice_orgs(changes.read, new), data)


def _compute_rejections(txs: Sequence[Tx], receipts: Sequence[Receipt], genesis: Genesis) -> Iterator[Event]:
    """`order.rejected` for every order a channel sent that the contracts refused: a refused `order.create`,
    a refused `order.import` (each of its orders), or an order of an accepted import refused on its own."""
    for tx, receipt in zip(txs, receipts, strict=True):
        if tx.kind not in ORDER_KINDS:
            continue
        signer = genesis.identity(tx.signer)
        orgs = [signer.org] if signer is not None else []
        for ref, code, message in compute_refused_orders(tx, receipt):
            data = {"channel": tx.signer, "external_ref": ref, "code": code, "message": message}
            yield Event("order.rejected", tx.id, orgs, data)


def compute_refused_orders(tx: Tx, receipt: Receipt) -> Iterator[tuple[str | None, str, str]]:
    """(external reference, code, message) of each order of `tx` refused (the reference None when the payload
    has none that reads as one)."""
    if tx.kind == "order.create":
        if not receipt.ok:
            yield _text(tx.payload.get("external_ref")), receipt.code, receipt.message
        return
    if not receipt.ok:
        orders = tx.payload.get("orders")
        for item in orders if isinstance(orders, list) else [None]:
            ref = item.get("external_ref") if isinstance(item, dict) else None
            yield _text(ref), receipt.code, receipt.message
        return
    for result in receipt.result.get("orders", []):
        if "error" in result:
            yield result["external_ref"], result["error"], result["message"]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
    events = []
    last = after
    walk = _walk_all(store, after) if org is None else _walk_org(store, org, after, types)
    for read, (cursor, raw) in enumerate(walk, 1):
        last = cursor
        event = None if raw is None else decode(raw, check=False)
        if event is not None and (types is None or event["type"] in types):
            del event["orgs"]
            events.append(to_json(event))
        if len(events) == limit or read == scan:
            break
    return events, last


def _walk_all(store: Store, after: int) -> Iterator[tuple[int, bytes]]:
    """(cursor, encoded event) of every event after `after`, in cursor order."""
    for key, value in store.scan_derived(_ALL + _cursor_key(after + 1), _ALL + b"\xff" * 9):
        for cursor, raw in _read_chunk(key, value).items():
            if cursor > after:
                yield cursor, raw


def _walk_org(store: Store, org: str, after: int, types: frozenset[str] | None) -> Iterator[tuple[int, bytes | None]]:
    """(cursor, encoded event, or None when its type is not among `types`) of every event of `org` after
    `after`, in cursor order; a chunk is read only for the events it answers."""
    prefix = _org_prefix(org)
    for key, value in store.scan_derived(prefix + _cursor_key(after + 1), prefix + b"\xff" * 9):
        chunk: dict[int, bytes] | None = None
        for cursor, event_type in _read_org_entry(key, value):
            if cursor <= after:
                continue
            if types is not None and event_type not in types:
                yield cursor, None
                continue
            if chunk is None:
                chunk = _read_chunk(key[-8:], _read_global(store, key[-8:]))
            yield cursor, chunk[cursor]


def read_event(store: Store, cursor: int) -> dict[str, Any] | None:
    """The event at `cursor` as `/v1/events` shows it (None if there is none)."""
    for cursor_read, raw in _walk_all(store, cursor - 1):
        if cursor_read != cursor:
            return None
        event = decode(raw, check=False)
        del event["orgs"]
        result: dict[str, Any] = to_json(event)
        return result
    return None


def _read_chunk(key: bytes, value: bytes) -> dict[int, bytes]:
    """The encoded events of a chunk entry by cursor: consecutive, up to the cursor its key ends with (an entry
    of the earlier layout holds one event, not a list)."""
    items = decode(value, check=False)
    events = items if isinstance(items, list) else [value]
    first = int.from_bytes(key[-8:], "big") - len(events) + 1
    return {first + n: raw for n, raw in enumerate(events)}


def _read_org_entry(key: bytes, value: bytes) -> list[tuple[int, str]]:
    """(cursor, type) of an organisation's events in a chunk (an entry of the earlier layout holds the type of the
    one event its key names, as text)."""
    if value[:1].isalpha():
        return [(int.from_bytes(key[-8:], "big"), value.decode())]
    return [(int(cursor), str(event_type)) for cursor, event_type in decode(value, check=False)]


def _read_global(store: Store, cursor: bytes) -> bytes:
    """The chunk an organisation's entry points at (written in the same batch, so always there)."""
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
