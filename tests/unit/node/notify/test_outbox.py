"""The outbox over the demo's feed, driven by seeded schedules of failures and restarts: every event of a
subscription is delivered exactly once, and the events of one order in feed order."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from devnet.scenario import run_demo
from node.feed import EVENT_TYPES, read_events
from node.notify.outbox import MAX_PENDING, Outbox, RetryPolicy
from node.notify.subscriptions import Subscription
from tests.helpers.executed import ExecutedLedger

POLICY = RetryPolicy(base_ms=10, cap_ms=100, max_attempts=1_000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutedLedger]:
    ledger = ExecutedLedger(tmp_path_factory.mktemp("outbox") / "db")
    run_demo(ledger.submit, ledger.query, lambda line: None)
    yield ledger
    ledger.close()


def make_subscription(sid: str, org: str | None, events: tuple[str, ...] = EVENT_TYPES) -> Subscription:
    return {
        "id": sid,
        "org": org or "org-0",
        "sees_all": org is None,
        "url": "http://receiver.example/hook",
        "events": sorted(events),
        "secret": "whsec_" + "0" * 32,
        "created_ms": 0,
        "created_by": "store-1",
        "start_cursor": 0,
    }


@pytest.mark.parametrize("seed", range(6))
def test_every_event_once_in_order_per_order_whatever_fails_and_restarts(demo: ExecutedLedger, seed: int) -> None:
    rng = random.Random(seed)
    now = [0]
    subscription = make_subscription(f"wh_seed{seed}", rng.choice([None, "org-0"]))
    outbox = Outbox(demo.store, lambda: now[0], POLICY, random.Random(seed))
    outbox.add(subscription)
    sid = subscription["id"]
    delivered: list[tuple[str, int]] = []
    for _ in range(10_000):
        outbox.follow(sid)
        if not outbox.pending[sid]:
            break
        ready = outbox.find_ready(sid, now[0], set(), 4)
        keys = [d["ordering_key"] for d in ready]
        assert len(keys) == len(set(keys)), "one delivery per ordering key at a time"
        for delivery in ready:
            earlier = [c for c, d in outbox.pending[sid].items() if d["ordering_key"] == delivery["ordering_key"]]
            assert min(earlier) == delivery["cursor"], "the first pending one of its order"
            if rng.random() < 0.3:
                outbox.on_failed(delivery, 500, "receiver down")
            else:
                outbox.on_delivered(delivery, 200)
                delivered.append((delivery["ordering_key"], delivery["cursor"]))
        if rng.random() < 0.1:
            outbox = Outbox(demo.store, lambda: now[0], POLICY, random.Random(seed))
            outbox.load([subscription])
        now[0] += rng.randrange(0, 60)
    org = None if subscription["sees_all"] else subscription["org"]
    expected, _ = read_events(demo.store, org, 0, 100_000, scan=100_000)
    assert sorted(cursor for _, cursor in delivered) == [int(event["cursor"]) for event in expected], f"seed {seed}"
    for key in {key for key, _ in delivered}:
        cursors = [cursor for k, cursor in delivered if k == key]
        assert cursors == sorted(cursors), f"seed {seed}: {key} out of order"
    outbox.remove(sid)


def test_a_subscription_of_some_types_and_a_full_outbox(demo: ExecutedLedger) -> None:
    subscription = make_subscription("wh_types", None, ("invoice.issued",))
    outbox = Outbox(demo.store, lambda: 0, POLICY)
    outbox.add(subscription)
    outbox.follow("wh_types")
    assert {d["type"] for d in outbox.pending["wh_types"].values()} == {"invoice.issued"}
    assert 0 < len(outbox.pending["wh_types"]) <= MAX_PENDING
    outbox.remove("wh_types")
    assert outbox.list_deliveries(["wh_types"], False, 100) == []


def test_a_dead_delivery_unblocks_its_order_and_is_replayed_with_its_id(demo: ExecutedLedger) -> None:
    outbox = Outbox(demo.store, lambda: 0, RetryPolicy(base_ms=0, cap_ms=0, max_attempts=2))
    outbox.add(make_subscription("wh_dead", None, ("order.status",)))
    outbox.follow("wh_dead")
    first = outbox.find_ready("wh_dead", 0, set(), 1)[0]
    assert outbox.on_failed(first, None, "timeout")["status"] == "pending"  # type: ignore[index]
    dead = outbox.on_failed(outbox.find_ready("wh_dead", 0, set(), 1)[0], None, "timeout")
    assert dead is not None and dead["status"] == "dead" and dead["attempts"] == 2
    after = outbox.find_ready("wh_dead", 0, set(), 1)[0]
    assert after["cursor"] > first["cursor"] and after["ordering_key"] == first["ordering_key"]
    assert [d["id"] for d in outbox.list_deliveries(["wh_dead"], True, 10)] == [first["id"]]
    again = outbox.replay(first["id"])
    assert again["id"] == first["id"] and again["status"] == "pending" and again["attempts"] == 0
    outbox.remove("wh_dead")
