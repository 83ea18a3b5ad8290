"""The change feed a node writes at commit covers every business event of the demo, in tx order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devnet.scenario import CHANNEL, OPERATOR, STORE, STORE_LOCATION, customer, run_demo
from node.feed import BLOCK_EVENT_TYPES, get_last_cursor, read_events, write_node_event
from tests.helpers.executed import ExecutedLedger


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutedLedger]:
    """The demo, then a refused order, an import with one refused order, and a safety stock above what is left."""
    ledger = ExecutedLedger(tmp_path_factory.mktemp("feed") / "db")
    run_demo(ledger.submit, ledger.query, lambda line: None)
    order = {"currency": "EUR", "customer_hash": customer("x"), "payment_terms": "on_account"}
    refused = ledger.submit(
        CHANNEL, "order.create", {**order, "external_ref": "BAD-1", "lines": [{"sku": "NOPE", "qty": 1}]}
    )
    assert not refused["ok"]
    good = {**order, "external_ref": "IMP-1", "lines": [{"sku": "MUG-WHT", "qty": 1}], "pickup": STORE_LOCATION}
    bad = {**order, "external_ref": "IMP-2", "lines": [{"sku": "NOPE", "qty": 1}]}
    assert ledger.submit(CHANNEL, "order.import", {"orders": [good, bad]})["ok"]
    assert ledger.submit(STORE, "stock.safety", {"location": STORE_LOCATION, "sku": "MUG-WHT", "qty": 10_000})["ok"]
    adjust = {"location": STORE_LOCATION, "sku": "MUG-WHT", "delta": 1, "reason": "found"}
    assert ledger.submit(OPERATOR, "stock.adjust", adjust)["ok"]
    yield ledger
    ledger.close()


def all_events(ledger: ExecutedLedger, org: str | None = None) -> list[dict[str, Any]]:
    events, _ = read_events(ledger.store, org, 0, 100_000, scan=100_000)
    return events


def test_the_demo_makes_every_type_of_business_event(demo: ExecutedLedger) -> None:
    seen = {event["type"] for event in all_events(demo)}
    assert seen >= set(BLOCK_EVENT_TYPES)


def test_refused_orders_carry_the_channel_reference_and_reason(demo: ExecutedLedger) -> None:
    rejected = [e["data"] for e in all_events(demo) if e["type"] == "order.rejected"]
    assert [(r["external_ref"], r["code"], r["channel"]) for r in rejected] == [
        ("BAD-1", "unknown_sku", CHANNEL),
        ("IMP-2", "unknown_sku", CHANNEL),
    ]
    assert all("NOPE" in r["message"] for r in rejected)
    assert rejected == [e["data"] for e in all_events(demo, "org-0") if e["type"] == "order.rejected"]


def test_stock_low_is_told_once_per_fall_below_the_safety_stock(demo: ExecutedLedger) -> None:
    low = [e["data"] for e in all_events(demo) if e["type"] == "stock.low"]
    assert len(low) == 1, "the adjustment after the fall keeps it below: no second event"
    assert low[0]["location"] == STORE_LOCATION and low[0]["sku"] == "MUG-WHT"
    assert low[0]["available"] < low[0]["safety"] == 10_000


def test_an_order_is_created_before_its_first_status_and_its_events_follow_its_history(demo: ExecutedLedger) -> None:
    by_order: dict[str, list[dict[str, Any]]] = {}
    for event in all_events(demo):
        if "order_id" in event["data"] and event["type"].startswith("order."):
            by_order.setdefault(event["data"]["order_id"], []).append(event)
    assert len(by_order) >= 8
    for order_id, events in by_order.items():
        assert events[0]["type"] == "order.created"
        assert events[1]["type"] == "order.status" and events[1]["data"]["from"] is None
        history = demo.query(f"/v1/orders/{order_id}", None)["history"]
        assert [e["data"]["to"] for e in events if e["type"] == "order.status"] == [step["to"] for step in history]
    cursors = [int(event["cursor"]) for event in all_events(demo)]
    assert cursors == sorted(cursors) and cursors[-1] == get_last_cursor(demo.store)


def test_an_organisation_sees_only_its_own_events(demo: ExecutedLedger) -> None:
    everything = all_events(demo)
    own = all_events(demo, "org-0")
    assert own and all(event in everything for event in own)
    assert all_events(demo, "org-1") == [], "the demo involves no location or channel of org-1"


def test_node_events_go_after_the_head_blocks_events_and_before_the_next_blocks(demo: ExecutedLedger) -> None:
    last = get_last_cursor(demo.store)
    first = write_node_event(demo.store, "alert", orgs=[], data={"rule": "test", "n": 1}, time_ms=1)
    second = write_node_event(demo.store, "alert", orgs=["org-0"], data={"rule": "test", "n": 2}, time_ms=1)
    assert last < first < second == get_last_cursor(demo.store)
    demo.submit(OPERATOR, "stock.adjust", {"location": STORE_LOCATION, "sku": "MUG-WHT", "delta": 1, "reason": "found"})
    tail = [e for e in all_events(demo) if int(e["cursor"]) > last]
    assert [e["type"] for e in tail[:2]] == ["alert", "alert"] and tail[2]["type"] == "stock.movement"
    assert [e["data"]["n"] for e in all_events(demo, "org-0") if e["type"] == "alert"] == [2]
