"""Rebuilding the list indexes and the money per day from a state loaded by state sync.

A node derives, in each block's write batch and from what the block changed,
the order indexes that lists read (`node.indexes`), the lot index that traces
read (`node.lots`), the amounts and orders per day that the finance
reconciliation reads (`node.finance`), the fulfilment backlog per location
(`node.backlog`), the SKUs below their safety stock (`node.lowstock`) and the
analytics totals (`node.analytics`). A node that
joins by state sync loads the world state of a snapshot and none of the blocks
before it, so nothing derived them: its lists would come back empty. It
rebuilds them from the state right after loading it, before it syncs or
commits any block: one pass over the orders (their index entries, the
payments each recorded and what each adds to the analytics), one over the
invoices and credit notes, one over the stock journal (each lotted entry's
place in the lot index, and the shipments of the analytics), written `BATCH`
records at a time, so memory stays bounded however many orders there are (the
day and analytics totals excepted: one small record per day, organisation and
currency, or per row of totals). A progress line goes to the log every
`LOG_EVERY` records.

Why rebuild rather than receive them with the snapshot: a snapshot is trusted
because its entries add up to the state commitment of a certified block, and
derived entries are in no commitment, so a peer could send any (hide orders
from the lists, invent a day's takings) and nothing would tell. From the
verified state every node computes the same entries.

What comes out as on a node that executed every block: each order's place
in every list of every reader scope, and every day's amounts and orders. One
thing the blocks knew and the state does not is the block time of an order's
last change: the rebuild takes the latest time the order and its
fulfilments, returns and documents record, which is that time unless the
last change recorded none of its own (goods of a return received without a
new document or status). The change feed is not rebuilt: it is the history of
the blocks (each event's block, place in it and organisations then), which
the state does not hold; on such a node it starts after the snapshot, as its
blocks do.

`mark_rebuild` is kept before the snapshot is loaded and forgotten once the
rebuild is done, so a node stopped halfway rebuilds again when it next
starts (writing the same entries again is harmless).

A node whose lists are of the earlier layout (an entry per order and list,
and each order's part of the analytics) deletes them and rebuilds them the
same way when it starts; its change feed reads on as it is (`node.feed`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from contracts import keys
from contracts.invoicing import get_invoice
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.state import StateView
from ledger.store import Store
from node.analytics import (
    Deltas,
    add_journal_entry,
    add_order,
    compute_analytics_totals,
)
from node.backlog import compute_counts_writes, is_open
from node.finance import DayAmounts, add_document_money, add_order_money, compute_totals_writes
from node.indexes import (
    Moves,
    OrderMeta,
    add_moves,
    compute_meta_entry,
    compute_moves_writes,
    compute_order_lists,
    compute_order_place,
)
from node.lots import compute_lot_entry
from node.lowstock import compute_low_stock_entry

log = logging.getLogger(__name__)

BATCH = 2_000
"""Records rebuilt per write batch (and per read view, whose caches it bounds)."""

LOG_EVERY = 100_000
"""Records between two progress lines."""

REBUILD_MARK = b"rebuild-derived"
"""Local record present while derived entries must be rebuilt from the state."""

EARLIER_ANALYTICS = b"am/"
"""Where the earlier layout kept each order's part of the analytics totals."""

EARLIER_LISTS = (b"o/", b"om/", EARLIER_ANALYTICS)
"""The entries of the earlier layout of the order lists, in the order they are deleted."""


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild read and how long it took."""

    orders: int
    documents: int
    movements: int
    """Journal entries read for the lot index."""
    skipped: int
    """Records left out of the lists and days because they do not have the shape this node's code reads."""
    seconds: float


def _past(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def mark_rebuild(store: Store) -> None:
    """Note that the derived entries must be rebuilt (before loading a snapshot)."""
    store.write_local({REBUILD_MARK: b""})


def needs_rebuild(store: Store) -> bool:
    """Whether the derived entries must be rebuilt: a rebuild was cut short, or the lists are of the earlier
    layout."""
    return store.get_local(REBUILD_MARK) is not None or has_earlier_lists(store)


def has_earlier_lists(store: Store) -> bool:
    """Whether the store holds order lists of the earlier layout (an entry per order and list, and each order's
    part of the analytics), which every node wrote for its orders."""
    return next(store.scan_derived(EARLIER_ANALYTICS, _past(EARLIER_ANALYTICS)), None) is not None


def _forget_earlier_lists(store: Store) -> None:
    """Delete the order lists of the earlier layout, `BATCH` entries at a time, the analytics parts last: a node
    stopped halfway still finds them when it next starts."""
    for prefix in EARLIER_LISTS:
        entries = store.scan_derived(prefix, _past(prefix))
        while batch := list(islice(entries, BATCH)):
            store.write_derived(dict.fromkeys((key for key, _ in batch), None))


def compute_last_change_ms(state: StateView, order: dict[str, Any]) -> int:
    """The latest block time an order's records hold: its creation, status changes, payments, cancellations and
    edits, its fulfilments' events, its returns and its invoices and credit notes."""
    times = [order["created_ms"]]
    for steps in (order["history"], order["payment"]["events"], order["cancellations"], order["edits"]):
        times.extend(step["time_ms"] for step in steps)
    for fulfilment_id in order["fulfilments"]:
        fulfilment = state.get(keys.fulfilment_key(fulfilment_id))
        if fulfilment is not None:
            times.extend(event["time_ms"] for event in fulfilment["events"])
    returns = (state.get(keys.return_key(return_id)) for return_id in order["returns"])
    documents = (get_invoice(state, number) for _, number in state.scan(keys.order_invoice_prefix(order["order_id"])))
    times.extend(record["time_ms"] for record in (*returns, *documents) if record is not None)
    return int(max(times))


Rebuild = Callable[[StateView, dict[str, Any]], dict[bytes, bytes | None]]
"""The derived entries of one record, from the state it is read in."""


@dataclass
class Pass:
    """What one pass over the records of a kind read."""

    records: int = 0
    skipped: int = 0
    """Records without the shape this node's code reads (left out of the lists, not fatal)."""


def _rebuild_pass(store: Store, prefix: str, what: str, rebuild: Rebuild, lists: Moves | None = None) -> Pass:
    """Write what `rebuild` answers for every record under `prefix`, a batch at a time, with the order lists
    its records joined in `lists` (merged with what earlier batches wrote there).

    The records are certified state, written by the contracts; one that this node's code cannot read (another
    version's shape) is left out of the lists and counted, rather than keep the node from syncing or starting."""
    entries: Iterator[tuple[bytes, bytes]] = store.scan_state(prefix.encode())
    done = Pass()
    while batch := list(islice(entries, BATCH)):
        state = StateView(store)
        writes: dict[bytes, bytes | None] = {}
        if lists is not None:
            lists.clear()
        for key, raw in batch:
            try:
                writes.update(rebuild(state, decode(raw, check=False)))
            except (LedgerError, KeyError, TypeError, ValueError) as exc:
                if not done.skipped:
                    log.warning("state sync: %s cannot be listed: %s: %s", key.decode(), type(exc).__name__, exc)
                done.skipped += 1
        if lists:
            writes.update(compute_moves_writes(lists, store.get_derived))
        store.write_derived(writes)
        done.records += len(batch)
        if done.records // LOG_EVERY > (done.records - len(batch)) // LOG_EVERY:
            log.warning("state sync: rebuilding lists and money per day: %d %s read", done.records, what)
    return done


def rebuild_derived(store: Store) -> RebuildReport:
    """Write the order indexes, the lot index and the money per day that the blocks of the store's state would
    have written, then forget the mark."""
    started = time.monotonic()
    if has_earlier_lists(store):
        log.warning("the order lists are of the earlier layout: rebuilding them from the state")
        mark_rebuild(store)
        _forget_earlier_lists(store)
    amounts: DayAmounts = {}
    deltas: Deltas = {}
    lists: Moves = {}

    def rebuild_order(state: StateView, order: dict[str, Any]) -> dict[bytes, bytes | None]:
        updated_ms = compute_last_change_ms(state, order)
        joined = compute_order_lists(order, OrderMeta(*compute_order_place(state.get, order), updated_ms))
        add_order(deltas, state.get, order)
        add_moves(lists, order["order_id"], set(), joined)
        writes = compute_meta_entry(order, updated_ms)
        writes.update(add_order_money(amounts, order))
        return writes

    def rebuild_document(state: StateView, document: dict[str, Any]) -> dict[bytes, bytes | None]:
        return add_document_money(amounts, document)

    def rebuild_movement(state: StateView, entry: dict[str, Any]) -> dict[bytes, bytes | None]:
        add_journal_entry(deltas, state.get, entry)
        where = store.get_tx_location(entry["tx_id"]) if entry["tx_id"] is not None else None
        indexed = compute_lot_entry(entry, where[1] if where is not None and where[0] == entry["height"] else 0)
        return {} if indexed is None else {indexed[0]: indexed[1]}

    orders = _rebuild_pass(store, keys.order_key(""), "orders", rebuild_order, lists)
    documents = _rebuild_pass(store, keys.invoice_prefix(), "invoices and credit notes", rebuild_document)
    movements = _rebuild_pass(store, keys.journal_prefix(), "journal entries", rebuild_movement)
    store.write_derived(compute_totals_writes(amounts, lambda key: None))
    store.write_derived(compute_analytics_totals(deltas, lambda key: None))
    backlog: Counter[str] = Counter()

    def count_fulfilment(state: StateView, fulfilment: dict[str, Any]) -> dict[bytes, bytes | None]:
        backlog[fulfilment["location"]] += is_open(fulfilment)
        return {}

    _rebuild_pass(store, keys.fulfilment_key(""), "fulfilments", count_fulfilment)
    store.write_derived(compute_counts_writes(backlog))
    _rebuild_pass(store, keys.stock_prefix(), "stock records", lambda state, stock: compute_low_stock_entry(stock))
    store.write_local({REBUILD_MARK: None})
    report = RebuildReport(
        orders.records,
        documents.records,
        movements.records,
        orders.skipped + documents.skipped + movements.skipped,
        time.monotonic() - started,
    )
    log.warning(
        "state sync: rebuilt the lists and the money per day of %d orders and %d documents in %.1f s%s",
        report.orders,
        report.documents,
        report.seconds,
        f" ({report.skipped} records left out: they do not read as this node expects)" if report.skipped else "",
    )
    return report
