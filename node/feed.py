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
    writes: dict[bytes, bytes | None] = {}
    block_hash = block.hash()
    for n, event in enumerate(events):
        cursor = block.height * PER_BLOCK + n
        writes.update(
            compute_event_writes(
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
        )
    return writes


def compute_event_writes(record: dict[str, Any]) -> dict[bytes, bytes | None]:
    """The derived entries of one event record (its `cursor`, `type` and `orgs` say where it goes)."""
    key = _cursor_key(int(record["cursor"]))
    writes: dict[bytes, bytes | None] = {_ALL + key: encode_unchecked(record)}
    for org in record["orgs"]:
        writes[_org_prefix(org) + key] = record["type"].encode()
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
    store.write_derived(compute_event_writes(record))
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


def read_event(store: Store, cursor: int) -> dict[str, Any] | None:
    """The event at `cursor` as `/v1/events` shows it (None if there is none)."""
    raw = store.get_derived(_ALL + _cursor_key(cursor))
    if raw is None:
        return None
    event = decode(raw, check=False)
    del event["orgs"]
    result: dict[str, Any] = to_json(event)
    return result


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
