"""Webhooks of a real node process to real receivers that fail and stall at times, across a crash of the node.

Two organisations subscribe with `omsnode webhook add`, each to every type of
event. Orders are placed, cancelled and paid before and after the node is
killed (SIGKILL) and started again. In the end each receiver, after
deduplication by `X-OMS-Delivery`, holds exactly the events its
organisation reads on `/v1/events` since it subscribed: each once, each with
a valid signature, each the very JSON of the feed, the events of each order
first received in feed order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from node.feed import EVENT_TYPES
from tests.e2e.conftest import omsnode
from tests.e2e.integrator import Api, follow, order_payload, start_api, stop_api
from tests.helpers.receiver import Plan, Receiver, is_valid_signature

pytestmark = [pytest.mark.e2e]

SETTINGS = {
    "webhook_retry_base_ms": 100,
    "webhook_retry_cap_ms": 1_000,
    "webhook_max_attempts": 40,
    "webhook_timeout_ms": 1_000,
    "alert_webhook_failures": 1_000,
}
"""Retries within a second, and too many to run out; no alert about them (it would be an event of its own)."""

FLAKY = {"fail_rate": 0.2, "slow_rate": 0.1, "slow_s": 1.5}
"""A fifth of the requests answered 500, a tenth answered after the node gave up on them."""


@pytest.fixture
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(tmp_path_factory.mktemp("webhooks") / "home", **SETTINGS)
    yield api
    stop_api(api)


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {org: Receiver(Plan(**FLAKY, seed=seed)) for seed, org in enumerate(("org-0", "org-1"))}  # type: ignore[arg-type]
    yield made
    for receiver in made.values():
        receiver.close()


def token_with_webhooks(api: Api, identity: str) -> str:
    return api.node.make_token(identity, "webhooks:read,webhooks:write,events:read")


def subscribe(api: Api, token: str, url: str) -> dict[str, Any]:
    made = omsnode(
        "webhook",
        "add",
        "--node",
        api.node.url,
        "--token",
        token,
        "--url",
        url,
        "--events",
        ",".join(EVENT_TYPES),
        "--json",
    )
    subscription: dict[str, Any] = json.loads(made.stdout)
    return subscription


def place_orders(api: Api, prefix: str, count: int) -> None:
    """Orders of the channel, every other one served from Porto (org-1); some cancelled, some paid."""
    for n in range(count):
        region = "PO" if n % 2 else "PT"
        order = api.send("channel-1", "order.create", order_payload(f"{prefix}-{n}", region=region, terms="prepaid"))
        if n % 3 == 0:
            api.send("channel-1", "order.cancel", {"order_id": order["order_id"], "reason": "changed mind"})
        else:
            pay = {"order_id": order["order_id"], "amount": order["total"], "reference": f"PSP-{prefix}-{n}"}
            api.send("channel-1", "payment.capture", pay)


def wait_for_all(receiver: Receiver, cursors: set[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while {json.loads(r.body)["cursor"] for r in receiver.unique().values()} < cursors:
        assert time.monotonic() < deadline, "the receiver still lacks events"
        time.sleep(0.2)


def test_every_event_of_an_organisation_reaches_its_receiver_once_signed_and_in_order_across_a_crash(
    api: Api, receivers: dict[str, Receiver]
) -> None:
    tokens = {"org-0": token_with_webhooks(api, "store-1"), "org-1": token_with_webhooks(api, "store-2")}
    _, start = follow(api, api.operator, "0")
    subscriptions = {org: subscribe(api, tokens[org], receivers[org].url) for org in tokens}
    assert {org: s["org"] for org, s in subscriptions.items()} == {"org-0": "org-0", "org-1": "org-1"}

    place_orders(api, "BEFORE", 6)
    api.node.stop(kill=True)
    api.node.start()
    place_orders(api, "AFTER", 6)

    for org, receiver in receivers.items():
        reader = api.node.make_token("store-1" if org == "org-0" else "store-2", "events:read")
        expected, _ = follow(api, reader, start)
        assert len(expected) > 10
        wait_for_all(receiver, {event["cursor"] for event in expected})
        received = receiver.unique()
        secret = subscriptions[org]["secret"]
        assert all(is_valid_signature(secret, r.signature, r.body) for r in receiver.received)
        by_cursor = {json.loads(r.body)["cursor"]: r for r in received.values()}
        assert sorted(by_cursor, key=int) == [e["cursor"] for e in expected], "each event once, no other"
        for event in expected:
            record = by_cursor[event["cursor"]]
            assert json.loads(record.body) == event and record.event == event["type"]
            assert record.delivery == f"{subscriptions[org]['id']}-{event['cursor']}"
        first_seen: dict[str, list[int]] = {}
        for record in received.values():
            event = json.loads(record.body)
            if "order_id" in event["data"]:
                first_seen.setdefault(event["data"]["order_id"], []).append(int(event["cursor"]))
        assert first_seen and all(cursors == sorted(cursors) for cursors in first_seen.values())
        assert receiver.requests > len(received), "the receiver failed some attempts, which were retried"

    listed = omsnode(
        "webhook", "deliveries", "--node", api.node.url, "--token", tokens["org-1"], "--json", "--limit", "500"
    )
    deliveries = json.loads(listed.stdout)["items"]
    assert deliveries and {d["subscription"] for d in deliveries} == {subscriptions["org-1"]["id"]}
    assert {d["status"] for d in deliveries} == {"delivered"}
    mine = omsnode("webhook", "list", "--node", api.node.url, "--token", tokens["org-0"], "--json")
    assert [s["id"] for s in json.loads(mine.stdout)["items"]] == [subscriptions["org-0"]["id"]]
    theirs = omsnode(
        "webhook",
        "remove",
        subscriptions["org-1"]["id"],
        "--node",
        api.node.url,
        "--token",
        tokens["org-0"],
        check=False,
    )
    assert theirs.returncode == 3 and "no subscription" in theirs.stderr, "another organisation's id is not found"
    omsnode("webhook", "remove", subscriptions["org-1"]["id"], "--node", api.node.url, "--token", tokens["org-1"])
    replay = omsnode(
        "webhook", "deliveries", "--replay", "nope-1", "--node", api.node.url, "--token", tokens["org-1"], check=False
    )
    assert replay.returncode == 3
    assert (
        omsnode("webhook", "list", "--node", api.node.url, "--token", tokens["org-1"], check=False).stdout.count("wh_")
        == 0
    )
