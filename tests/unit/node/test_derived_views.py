"""The order lists and the change feed answer as a recount from the raw orders and events would.

One ledger is built through the node's own executor on a real LevelDB store
(`tests.helpers.order_ledger`: a block of orders, then blocks that cancel,
intercept, ship, deliver and return some), then a few orders more in blocks
of their own, so that lists hold entries of many orders and of one, and a
block's events fill several of the feed's entries. Hypothesis then picks
lists, time ranges, page sizes, cursors, organisations and event types, and
every page read through the functions the routes use must be what the recount
says: the same orders in the same order, the same events, the same cursors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import keys, queries
from ledger.encoding import decode, encode_unchecked
from node.api.orders import summarize
from node.api.pages import collect, decode_cursor
from node.feed import CHUNK, EVENT_TYPES, PER_BLOCK, get_last_cursor, read_event, read_events
from node.indexes import ALL_SCOPE, OrderRange, scan_orders
from tests.helpers.executed import ExecutedLedger
from tests.helpers.order_ledger import build, order_tx

ORDERS = 150
"""Orders placed in one block (more events than one entry of the feed holds)."""

LATER = 6
"""Orders placed after, each in a block of its own, half of them shipped in a block of their own."""

SCOPES = (ALL_SCOPE, "org-0", "org-1")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutedLedger]:
    built = ExecutedLedger(tmp_path_factory.mktemp("derived") / "db")
    build(built, ORDERS)
    for i in range(ORDERS, ORDERS + LATER):
        [receipt] = built.commit_block([order_tx(i)])
        assert receipt.ok, receipt.message
        if i % 2:
            order = built.state.get(keys.order_key(str(receipt.result["order_id"])))
            assert order is not None
            for fulfilment_id in order["fulfilments"]:
                done = built.submit("operator-1", "fulfilment.ship", {"fulfilment_id": fulfilment_id, "carrier": "DHL"})
                assert done["ok"], done["message"]
    yield built
    built.close()


def recount_orders(ledger: ExecutedLedger) -> list[dict[str, Any]]:
    """Every order with what lists are sorted and filtered by, counted from its record and its fulfilments' and
    returns': who may read it, where it is served from, and the time of its last change."""
    state = ledger.state
    found = []
    for _, raw in ledger.store.scan_state(keys.order_key("").encode()):
        order = queries.get_order(state, decode(raw)["order_id"])
        assert order is not None
        fulfilments = order["fulfilments"]
        returns = [queries.get_return(state, return_id) for return_id in order["returns"]]
        times = [order["created_ms"], *(step["time_ms"] for step in order["history"])]
        times += [event["time_ms"] for event in order["payment"]["events"]]
        times += [step["time_ms"] for step in order["cancellations"] + order["edits"]]
        times += [event["time_ms"] for f in fulfilments for event in f["events"]]
        times += [r["time_ms"] for r in returns if r is not None]
        found.append(
            {
                "order_id": order["order_id"],
                "status": order["status"],
                "channel": order["channel"],
                "created_ms": order["created_ms"],
                "updated_ms": max(times),
                "orgs": {order["org"], *(f["org"] for f in fulfilments)},
                "locations": sorted({f["location"] for f in fulfilments}),
            }
        )
    return found


@pytest.fixture(scope="module")
def orders(ledger: ExecutedLedger) -> list[dict[str, Any]]:
    counted = recount_orders(ledger)
    assert len(counted) == ORDERS + LATER
    assert len({o["created_ms"] for o in counted}) == LATER + 1, "one block of many orders, then one order a block"
    return counted


def expected_list(orders: list[dict[str, Any]], query: OrderRange) -> list[str]:
    """The order ids a list should answer, by the recount: in scope, of the value, in the range, by time then id."""
    time_field = "updated_ms" if query.dimension == "updated" else "created_ms"
    found = []
    for order in orders:
        values = {
            "created": [""],
            "updated": [""],
            "status": [order["status"]],
            "channel": [order["channel"]],
            "location": order["locations"],
        }[query.dimension]
        in_scope = query.scope == ALL_SCOPE or query.scope in order["orgs"]
        if in_scope and query.value in values and query.since_ms <= order[time_field] < query.until_ms:
            found.append((order[time_field], order["order_id"]))
    return [order_id for _, order_id in sorted(found)]


def read_list(ledger: ExecutedLedger, query: OrderRange, limit: int) -> list[str]:
    """Every order of a list, page by page, as `GET /v1/orders` reads them; each cursor names the last order read
    and moves forward."""
    read: list[str] = []
    cursor = None
    previous = b""
    while True:
        ids, cursor = collect(scan_orders(ledger.store, query, decode_cursor(cursor)), limit, lambda oid: oid)
        if cursor is None:
            return read + ids
        read.extend(ids)
        after = decode_cursor(cursor)
        assert after is not None and after.startswith(query.prefix) and after > previous
        assert after[len(query.prefix) + 9 :].decode() == ids[-1], "a cursor is the key of the last order read"
        previous = after


@st.composite
def lists(draw: st.DrawFn, orders: list[dict[str, Any]]) -> OrderRange:
    dimension = draw(st.sampled_from(("created", "updated", "status", "channel", "location")))
    value = ""
    if dimension != "created" and dimension != "updated":
        field = {"status": "status", "channel": "channel", "location": "locations"}[dimension]
        seen = sorted({v for o in orders for v in (o[field] if dimension == "location" else [o[field]])})
        value = draw(st.sampled_from(seen))
    times = sorted({o["created_ms"] for o in orders} | {o["updated_ms"] for o in orders})
    since = draw(st.sampled_from([0, *times]))
    until = draw(st.sampled_from([t for t in [*times, 2**63] if t > since]))
    return OrderRange(draw(st.sampled_from(SCOPES)), dimension, value, since, until)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), limit=st.integers(1, 40))
def test_every_list_pages_through_the_orders_a_recount_finds(
    ledger: ExecutedLedger, orders: list[dict[str, Any]], data: st.DataObject, limit: int
) -> None:
    query = data.draw(lists(orders))
    assert read_list(ledger, query, limit) == expected_list(orders, query)


def test_lists_of_many_orders_and_of_one_are_read_alike(ledger: ExecutedLedger, orders: list[dict[str, Any]]) -> None:
    for scope in SCOPES:
        for dimension in ("created", "updated"):
            query = OrderRange(scope, dimension)
            assert read_list(ledger, query, 7) == expected_list(orders, query)
    assert expected_list(orders, OrderRange("org-1", "location", "ST-2")), "the store of org-1 serves some orders"


def test_a_summary_has_the_last_change_and_locations_a_recount_finds(
    ledger: ExecutedLedger, orders: list[dict[str, Any]]
) -> None:
    state = ledger.state
    for order in orders:
        summary = summarize(ledger.store, state, order["order_id"])
        assert summary is not None
        assert (summary["updated_ms"], summary["locations"]) == (order["updated_ms"], order["locations"])
    assert any(o["updated_ms"] > o["created_ms"] for o in orders) and any(
        o["updated_ms"] == o["created_ms"] for o in orders
    )


@pytest.fixture(scope="module")
def events(ledger: ExecutedLedger) -> list[dict[str, Any]]:
    """Every event of the feed with its organisations, from the raw entries: each a map, in cursor order."""
    found = []
    for key, value in ledger.store.scan_derived(b"e/", b"e0"):
        chunk = [decode(raw) for raw in decode(value)]
        last = int.from_bytes(key[-8:], "big")
        assert [int(e["cursor"]) for e in chunk] == list(range(last - len(chunk) + 1, last + 1))
        found.extend(chunk)
    cursors = [int(e["cursor"]) for e in found]
    assert cursors == sorted(set(cursors)) and cursors[-1] == get_last_cursor(ledger.store)
    assert max(sum(1 for c in cursors if c // PER_BLOCK == h) for h in {c // PER_BLOCK for c in cursors}) > CHUNK
    return found


def expected_events(
    events: list[dict[str, Any]], org: str | None, after: int, limit: int, types: frozenset[str] | None, scan: int
) -> tuple[list[str], int]:
    """The cursors of the events a page should answer, and its next cursor: the reader's events after `after`,
    one at a time, those of `types` kept, until `limit` are kept or `scan` are read."""
    kept: list[str] = []
    last = after
    read = 0
    for event in events:
        if int(event["cursor"]) <= after or (org is not None and org not in event["orgs"]):
            continue
        read += 1
        last = int(event["cursor"])
        if types is None or event["type"] in types:
            kept.append(event["cursor"])
        if len(kept) == limit or read == scan:
            break
    return kept, last


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    org=st.sampled_from([None, "org-0", "org-1", "org-9"]),
    limit=st.integers(1, 60),
    scan=st.integers(1, 400),
    types=st.none() | st.frozensets(st.sampled_from(EVENT_TYPES), min_size=1),
)
def test_every_page_of_the_feed_is_what_a_recount_of_the_events_gives(
    ledger: ExecutedLedger,
    events: list[dict[str, Any]],
    data: st.DataObject,
    org: str | None,
    limit: int,
    scan: int,
    types: frozenset[str] | None,
) -> None:
    cursors = [int(e["cursor"]) for e in events]
    after = data.draw(st.sampled_from([0, *cursors]) | st.sampled_from(cursors).map(lambda c: c - 1))
    answered, last = read_events(ledger.store, org, after, limit, types, scan)
    expected, expected_last = expected_events(events, org, after, limit, types, scan)
    assert [e["cursor"] for e in answered] == expected and last == expected_last
    by_cursor = {e["cursor"]: e for e in events}
    for event in answered:
        assert read_event(ledger.store, int(event["cursor"])) == event
        assert event["type"] == by_cursor[event["cursor"]]["type"]


def test_an_event_is_read_by_its_cursor_and_no_other(ledger: ExecutedLedger, events: list[dict[str, Any]]) -> None:
    for event in events[:: max(1, len(events) // 50)]:
        cursor = int(event["cursor"])
        found = read_event(ledger.store, cursor)
        assert found is not None and found["cursor"] == event["cursor"] and found["type"] == event["type"]
        assert cursor + 1 in {int(e["cursor"]) for e in events} or read_event(ledger.store, cursor + 1) is None
    assert read_event(ledger.store, get_last_cursor(ledger.store) + 1) is None


def test_entries_of_the_earlier_layout_read_on(tmp_path: Path) -> None:
    """One event per `e/` entry and its type alone per `eo/` entry, as a node of the earlier layout wrote them,
    read as chunks of one between chunks of the present layout."""
    ledger = ExecutedLedger(tmp_path / "db")
    try:
        [receipt] = ledger.commit_block([order_tx(0)])
        assert not receipt.ok, "no catalogue: the order is refused, an event of the channel's organisation"
        head = get_last_cursor(ledger.store)
        old = {"type": "alert", "height": 1, "block": b"", "time_ms": 1, "tx_id": None, "orgs": ["org-0"]}
        entries: dict[bytes, bytes | None] = {}
        for n in (1, 2):
            record = {**old, "cursor": str(head + n), "data": {"n": n}}
            entries[b"e/" + (head + n).to_bytes(8, "big")] = encode_unchecked(record)
            entries[b"eo/org-0\x00" + (head + n).to_bytes(8, "big")] = b"alert"
        ledger.store.write_derived(entries)
        for org in (None, "org-0"):
            first, cursor = read_events(ledger.store, org, 0, 2)
            rest, _ = read_events(ledger.store, org, cursor, 10)
            assert [e["type"] for e in first + rest] == ["order.rejected", "alert", "alert"]
            assert [e["data"].get("n") for e in first + rest] == [None, 1, 2]
            assert read_events(ledger.store, org, 0, 10, frozenset({"alert"}))[0] == (first + rest)[1:]
        assert read_event(ledger.store, head + 2)["data"] == {"n": 2}  # type: ignore[index]
    finally:
        ledger.close()
