"""Analytics of orders: sales, times to ship and deliver, outcomes and allocation, kept as running totals.

Every order contributes integer counters to a few tables, once per reader
scope it falls in (`*` for operators and auditors, and each organisation the
order belongs to, `node.visibility`):

- `channel`, `day` (UTC day the order was placed), `sku`: orders, units
  ordered, units cancelled and amount (the order's total, or the line's gross
  for a SKU), per currency;
- `location`: fulfilments and units of the fulfilments each location serves
  (declined and cancelled ones left out);
- `ship`, `deliver`: per location, how many fulfilments first shipped (or
  were delivered) after their order was placed, by the bucket of that time
  (`BOUNDS_MS`; a percentile is answered as its bucket's upper bound);
- `outcome`: orders, and per kind (`cancelled`, `intercepted`, `returned`)
  and reason, the orders that came to it;
- `allocation`: units ordered and units placed in fulfilments (fill rate),
  orders with a fulfilment and orders served from more than one location
  (split rate);
- `shipped`: per UTC day, location and SKU, the units that left in shipments
  (from the stock journal, for stock turnover and days of cover), under `*`
  and the organisation of the location.

The totals are kept in each block's write batch, like the other derived
views: for every order the block changed (or whose fulfilments or returns it
changed) its contribution now replaces the one it made before, computed from
the order as the committed state holds it before the block (the same records
gave it then), and every shipment the journal records adds its units; so a
route reads one small range of totals whatever the number of orders, and a
block writes only the rows it moves:

    an/<scope>\\0<table>\\0<key (canonical encoding)>  -> {counter: n}

A node that joined by state sync computes them from the state it loaded
(`node.reindex`), from the same contribution of each order.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from contracts import keys
from ledger.encoding import decode, encode, encode_unchecked
from ledger.store import Store
from node.changes import BlockChanges
from node.finance import format_day
from node.indexes import ALL_SCOPE
from node.visibility import Read, compute_order_orgs, get_location_org

TABLES = ("channel", "day", "sku", "location", "ship", "deliver", "outcome", "allocation", "shipped")
"""The tables an order contributes to."""

BOUNDS_MS: tuple[int, ...] = tuple(round(1_000 * 2 ** (step / 4)) for step in range(100))
"""Upper bounds of the buckets of a time to ship or deliver: from one second, each about 19% above the last
(the last, some 31 years, holds anything longer)."""

_TOTALS = b"an/"
_GONE = ("declined", "cancelled")
"""Fulfilment statuses that serve nothing."""

Row = tuple[str, str, tuple[str, ...]]
"""(scope, table, key) of one row of totals."""

Counters = dict[str, int]
Contribution = dict[Row, Counters]

Deltas = dict[Row, Counters]
"""What to add to rows of totals (negative to take away)."""

OrderRows = dict[tuple[str, tuple[str, ...]], Counters]
"""What one order adds to each (table, key), whoever reads it."""


def compute_bucket(elapsed_ms: int) -> int:
    """The bucket of a time: the first whose upper bound is at least that time."""
    return min(bisect.bisect_left(BOUNDS_MS, max(elapsed_ms, 0)), len(BOUNDS_MS) - 1)


def _add(rows: OrderRows, table: str, key: tuple[str, ...], **counts: int) -> None:
    counters = rows.setdefault((table, key), {})
    for name, count in counts.items():
        counters[name] = counters.get(name, 0) + count


def _first_time(events: list[dict[str, Any]], status: str) -> int | None:
    return next((int(event["time_ms"]) for event in events if event["status"] == status), None)


def compute_order_rows(read: Read, order: dict[str, Any]) -> OrderRows:
    """What one order, as the state `read` reads holds it, adds to each (table, key), whoever reads it."""
    rows: OrderRows = {}
    currency = str(order["currency"])
    created = int(order["created_ms"])
    ordered = sum(int(line["qty"]) for line in order["lines"])
    cancelled = sum(int(line["cancelled"]) for line in order["lines"])
    sale = {"orders": 1, "units": ordered, "cancelled_units": cancelled, "amount": int(order["total"])}
    _add(rows, "channel", (str(order["channel"]), currency), **sale)
    _add(rows, "day", (format_day(created), currency), **sale)
    for sku in sorted({str(line["sku"]) for line in order["lines"]}):
        lines = [line for line in order["lines"] if line["sku"] == sku]
        _add(
            rows,
            "sku",
            (sku, currency),
            orders=1,
            units=sum(int(line["qty"]) for line in lines),
            cancelled_units=sum(int(line["cancelled"]) for line in lines),
            amount=sum(int(line["gross"]) for line in lines),
        )
    filled = 0
    locations = set()
    for fulfilment_id in order["fulfilments"]:
        fulfilment = read(keys.fulfilment_key(fulfilment_id))
        if fulfilment is None or fulfilment["status"] in _GONE:
            continue
        location = str(fulfilment["location"])
        units = sum(int(line["qty"]) for line in fulfilment["lines"])
        filled += units
        locations.add(location)
        _add(rows, "location", (location,), fulfilments=1, units=units)
        for table, status in (("ship", "shipped"), ("deliver", "delivered")):
            when = _first_time(fulfilment["events"], status)
            if when is not None:
                _add(rows, table, (location,), **{str(compute_bucket(when - created)): 1})
    _add(rows, "outcome", ("orders", ""), orders=1)
    if order["status"] == "cancelled":
        step = next((s for s in reversed(order["history"]) if s["to"] == "cancelled"), None)
        _add(rows, "outcome", ("cancelled", str(step["reason"]) if step else ""), orders=1)
    for reason in sorted({str(s["reason"]) for s in order["history"] if s["to"] == "intercepted"}):
        _add(rows, "outcome", ("intercepted", reason), orders=1)
    returns = [read(keys.return_key(return_id)) for return_id in order["returns"]]
    for reason in sorted({str(r["reason"]) for r in returns if r is not None and r["status"] != "cancelled"}):
        _add(rows, "outcome", ("returned", reason), orders=1)
    _add(
        rows,
        "allocation",
        (),
        orders=1,
        units=ordered - cancelled,
        filled_units=filled,
        fulfilled_orders=int(bool(locations)),
        split_orders=int(len(locations) > 1),
    )
    return rows


def _add_rows(deltas: Deltas, scopes: list[str], rows: OrderRows, sign: int) -> None:
    for scope in scopes:
        for (table, key), counters in rows.items():
            target = deltas.setdefault((scope, table, key), {})
            for name, count in counters.items():
                target[name] = target.get(name, 0) + sign * count


def _subtract_rows(rows: OrderRows, taken: OrderRows) -> OrderRows:
    """`rows` less `taken`, without the counters (and rows) that come to nothing."""
    left: OrderRows = {}
    for row in rows.keys() | taken.keys():
        now, before = rows.get(row, {}), taken.get(row, {})
        counters = {name: now.get(name, 0) - before.get(name, 0) for name in now.keys() | before.keys()}
        moved = {name: count for name, count in counters.items() if count}
        if moved:
            left[row] = moved
    return left


def add_order(deltas: Deltas, read: Read, order: dict[str, Any]) -> None:
    """Add to `deltas` what an order, as the state `read` reads holds it, adds to the rows of every scope that
    reads it."""
    _add_rows(deltas, [ALL_SCOPE, *compute_order_orgs(read, order)], compute_order_rows(read, order), 1)


def add_order_change(
    deltas: Deltas, old_read: Read, old: dict[str, Any] | None, read: Read, order: dict[str, Any]
) -> None:
    """Add to `deltas` what an order adds now (as `read` reads it) less what it added before (`old`, as
    `old_read` reads it; None: a new order): with the same readers, only the counters that moved."""
    rows = compute_order_rows(read, order)
    scopes = [ALL_SCOPE, *compute_order_orgs(read, order)]
    if old is not None:
        old_rows = compute_order_rows(old_read, old)
        old_scopes = [ALL_SCOPE, *compute_order_orgs(old_read, old)]
        if old_scopes == scopes:
            rows = _subtract_rows(rows, old_rows)
        else:
            _add_rows(deltas, old_scopes, old_rows, -1)
    _add_rows(deltas, scopes, rows, 1)


def _totals_key(row: Row) -> bytes:
    scope, table, key = row
    return _TOTALS + f"{scope}\x00{table}\x00".encode() + encode_unchecked(list(key))


def add_contribution(deltas: Deltas, contribution: Contribution, sign: int) -> None:
    for row, counters in contribution.items():
        target = deltas.setdefault(row, {})
        for name, count in counters.items():
            target[name] = target.get(name, 0) + sign * count


def compute_analytics_totals(deltas: Deltas, read: Callable[[bytes], bytes | None]) -> dict[bytes, bytes | None]:
    """The rows of totals in `deltas`: what `read` finds kept, plus the deltas (a row that comes to nothing
    is deleted)."""
    writes: dict[bytes, bytes | None] = {}
    for row, added in sorted(deltas.items()):
        key = _totals_key(row)
        raw = read(key)
        totals: Counters = decode(raw) if raw is not None else {}
        for name, count in added.items():
            totals[name] = totals.get(name, 0) + count
        kept = {name: count for name, count in sorted(totals.items()) if count}
        writes[key] = encode_unchecked(kept) if kept else None
    return writes


def add_journal_entry(deltas: Deltas, read: Read, entry: dict[str, Any]) -> None:
    """A new stock journal entry: a shipment adds the units that left to its day, location and SKU."""
    if entry["kind"] != "shipment" or not entry["delta"]:
        return
    key = (format_day(int(entry["time_ms"])), str(entry["location"]), str(entry["sku"]))
    org = get_location_org(read, entry["location"])
    units = {"units": -int(entry["delta"])}
    add_contribution(deltas, {(scope, "shipped", key): units for scope in {ALL_SCOPE, org or ALL_SCOPE}}, 1)


def compute_analytics_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """The totals after the block: each order it changed (or whose fulfilments or returns it changed) takes
    back what it added before the block and adds what it adds now, and each shipment it journaled adds its
    units."""
    order_ids = {new["order_id"] for _, new in changes.updated(keys.order_key(""))}
    order_ids.update(new["order_id"] for _, new in changes.updated(keys.fulfilment_key("")))
    order_ids.update(new["order_id"] for _, new in changes.updated(keys.return_key("")))
    deltas: Deltas = {}
    for order_id in sorted(order_ids):
        order = changes.read(keys.order_key(order_id))
        if order is None:
            continue
        add_order_change(deltas, changes.old, changes.old(keys.order_key(order_id)), changes.read, order)
    for old, new in changes.updated(keys.journal_prefix()):
        if old is None:
            add_journal_entry(deltas, changes.read, new)
    return compute_analytics_totals(deltas, changes.store.get_derived)


def read_table(
    store: Store, scope: str, table: str, since: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Counters]]:
    """Every row of `table` that readers of `scope` see, in key order; with `since`, only the rows whose key's
    encoding sorts from `since`'s on (for keys that start with a day: `(day, "", "")`, the rows from that day)."""
    prefix = _TOTALS + f"{scope}\x00{table}\x00".encode()
    scanned = store.scan_derived(prefix + (encode(list(since)) if since else b""), prefix[:-1] + b"\x01")
    return sorted((tuple(decode(key[len(prefix) :])), decode(raw)) for key, raw in scanned)


def compute_percentile(buckets: Counters, share: int) -> int | None:
    """The upper bound of the bucket holding the `share`-th percentile (nearest rank) of the times counted."""
    counts = sorted((int(bucket), count) for bucket, count in buckets.items())
    total = sum(count for _, count in counts)
    if not total:
        return None
    rank = -(-share * total // 100)
    seen = 0
    for bucket, count in counts:
        seen += count
        if seen >= rank:
            return BOUNDS_MS[bucket]
    raise AssertionError("the ranks of a histogram add up to its total")
