"""Money per day: what each organisation captured, invoiced, credited and refunded, and which orders it touched.

Kept like the other indexes, in each block's write batch, from what the block
changed (`BlockChanges`): an order whose captured or refunded amount grew
adds the difference to its organisation (the channel's, which takes the
money), and a new invoice or credit note adds its total to its issuer. Days
are UTC days of block time, amounts per currency:

    fd/<YYYY-MM-DD>\\0<org>\\0<currency>  -> {captured, refunded, invoiced, credited}
    fo/<YYYY-MM-DD>\\0<order id>          -> empty (the order's money or documents changed that day)

So the finance reconciliation of a day reads that day's totals and walks the
orders it touched, never the whole ledger. A node keeps these from the block
that first runs this code on; earlier days have none. A node that joined by
state sync computes them from the state instead (`add_order_money`,
`add_document_money`, run by `node.reindex`): every payment event and
document carries its amount and block time, so it finds every day the blocks
would have given it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from contracts import keys
from ledger.encoding import decode, encode
from ledger.store import Store
from node.changes import BlockChanges

FIELDS = ("captured", "refunded", "invoiced", "credited")
"""The amounts kept per organisation, day and currency."""

_TOTALS = b"fd/"
_ORDERS = b"fo/"
DAY_MS = 86_400_000


def format_day(time_ms: int) -> str:
    """The UTC day of a block time, `YYYY-MM-DD`."""
    return time.strftime("%Y-%m-%d", time.gmtime(time_ms // 1000))


def _totals_key(day: str, org: str, currency: str) -> bytes:
    return _TOTALS + f"{day}\x00{org}\x00{currency}".encode()


def _order_key(day: str, order_id: str) -> bytes:
    return _ORDERS + f"{day}\x00{order_id}".encode()


DayAmounts = dict[tuple[str, str, str], dict[str, int]]
"""Amounts to add to the totals of (day, organisation, currency), per field."""


def add_amount(amounts: DayAmounts, day: str, org: str, currency: str, field: str, amount: int) -> None:
    totals = amounts.setdefault((day, org, currency), dict.fromkeys(FIELDS, 0))
    totals[field] += amount


def compute_totals_writes(amounts: DayAmounts, read: Callable[[bytes], bytes | None]) -> dict[bytes, bytes | None]:
    """The totals of each (day, organisation, currency) in `amounts`: what `read` finds kept, plus the amounts."""
    writes: dict[bytes, bytes | None] = {}
    for (day, org, currency), added in sorted(amounts.items()):
        key = _totals_key(day, org, currency)
        raw = read(key)
        totals = decode(raw) if raw is not None else dict.fromkeys(FIELDS, 0)
        writes[key] = encode({field: totals[field] + added[field] for field in FIELDS})
    return writes


def compute_finance_writes(changes: BlockChanges) -> dict[bytes, bytes | None]:
    """The day's totals, updated by what the block captured, refunded, invoiced and credited, and the orders
    whose money or documents it changed."""
    day = format_day(changes.block.header.timestamp_ms)
    amounts: DayAmounts = {}
    touched: set[str] = set()

    def add(org: str, currency: str, field: str, amount: int, order_id: str) -> None:
        if amount:
            add_amount(amounts, day, org, currency, field, amount)
            touched.add(order_id)

    for old, new in changes.updated(keys.order_key("")):
        before = old["payment"] if old else {"captured": 0, "refunded": 0}
        for field in ("captured", "refunded"):
            add(new["org"], new["currency"], field, new["payment"][field] - before[field], new["order_id"])
    for old, new in changes.updated(keys.invoice_prefix()):
        if old is None:
            field = "credited" if new["credit_note"] else "invoiced"
            add(new["issuer"], new["currency"], field, new["total"], new["order_id"])
    writes = compute_totals_writes(amounts, changes.store.get_derived)
    for order_id in sorted(touched):
        writes[_order_key(day, order_id)] = b""
    return writes


def add_order_money(amounts: DayAmounts, order: dict[str, Any]) -> dict[bytes, bytes | None]:
    """From an order as the state holds it: add each payment it captured or refunded to `amounts` on the day of
    its block, and answer the entries of the days it touched the order, as the blocks that recorded them did
    (every change of captured or refunded is one payment event with its amount and block time)."""
    writes: dict[bytes, bytes | None] = {}
    for event in order["payment"]["events"]:
        if event["kind"] in ("captured", "refunded") and event["amount"]:
            day = format_day(event["time_ms"])
            add_amount(amounts, day, order["org"], order["currency"], event["kind"], event["amount"])
            writes[_order_key(day, order["order_id"])] = b""
    return writes


def add_document_money(amounts: DayAmounts, document: dict[str, Any]) -> dict[bytes, bytes | None]:
    """From an invoice or credit note as the state holds it: add its total to `amounts` on the day of its block,
    and answer the entry of that day for its order."""
    if not document["total"]:
        return {}
    day = format_day(document["time_ms"])
    field = "credited" if document["credit_note"] else "invoiced"
    add_amount(amounts, day, document["issuer"], document["currency"], field, document["total"])
    return {_order_key(day, document["order_id"]): b""}


def read_day_totals(store: Store, day: str) -> list[dict[str, Any]]:
    """Every organisation's and currency's amounts of `day`, by organisation then currency."""
    prefix = _TOTALS + day.encode() + b"\x00"
    rows = []
    for key, raw in store.scan_derived(prefix, prefix[:-1] + b"\x01"):
        org, currency = key[len(prefix) :].decode().split("\x00")
        rows.append({"org": org, "currency": currency, **decode(raw)})
    return rows


def scan_day_orders(store: Store, day: str, after: bytes | None) -> Iterator[tuple[bytes, str]]:
    """(index key, order id) of the orders whose money or documents changed on `day`, past `after`."""
    prefix = _ORDERS + day.encode() + b"\x00"
    start = prefix if after is None else max(prefix, after + b"\x00")
    for key, _ in store.scan_derived(start, prefix[:-1] + b"\x01"):
        yield key, key[len(prefix) :].decode()
