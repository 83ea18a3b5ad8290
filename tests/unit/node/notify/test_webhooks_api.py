"""Webhook subscriptions through a node's API, delivered to a real receiver: signed, retried, dead, replayed."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.genesis import Genesis
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE, NodeConfig
from node.home import create_network
from omsclient import Keyring
from tests.helpers.api import bearer, commit, make_token
from tests.helpers.receiver import Plan, Receiver, is_valid_signature

FAST = {"webhook_retry_base_ms": 50, "webhook_retry_cap_ms": 200, "webhook_max_attempts": 3, "webhook_timeout_ms": 2000}
"""Retries within a second, three attempts."""

SKU = {"price": 100, "currency": "EUR", "tax_class": "standard"}


@dataclasses.dataclass
class Node:
    client: TestClient
    signer: Keyring
    operator: str
    store: str
    """A token of `store-1` (org-0) with the webhook scopes and `events:read`."""


def configure(home: Path, **settings: Any) -> None:
    NodeConfig.save(dataclasses.replace(NodeConfig.load(home), **settings), home)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    home = tmp_path / "node-0"
    create_network([home], [0], home / CLIENTS_DIR)
    configure(home, **FAST)
    store = make_token(home, "store-1", frozenset({"webhooks:read", "webhooks:write", "events:read", "orders:read"}))
    with TestClient(create_app(home), headers=bearer(make_token(home))) as client:
        status = lambda: int(client.get("/v1/status").json()["tx_valid_until"])  # noqa: E731
        signer = Keyring(home / CLIENTS_DIR, Genesis.load(home / GENESIS_FILE).chain_id, status)
        yield Node(client, signer, make_token(home), store)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(Plan())
    yield server
    server.close()


def wait_for(condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def subscribe(node: Node, url: str, events: list[str], token: str | None = None) -> dict[str, Any]:
    body = {"url": url, "events": events}
    response = node.client.post("/v1/webhooks", json=body, headers=bearer(token or node.operator))
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def test_a_subscription_receives_signed_events_of_its_types_after_it_was_made(node: Node, receiver: Receiver) -> None:
    commit(node.client, node.signer.sign_tx("operator-1", "sku.upsert", {**SKU, "sku": "EARLY"}))
    made = subscribe(node, receiver.url, ["stock.movement", "alert"])
    assert made["secret"].startswith("whsec_") and made["org"] == "org-0" and made["sees_all"]
    place = {"location": "LOC", "type": "store", "org": "org-0", "region": "NL", "lat": 0, "lon": 0}
    commit(node.client, node.signer.sign_tx("operator-1", "location.upsert", place))
    receipt = {"location": "LOC", "lines": [{"sku": "EARLY", "qty": 5}]}
    commit(node.client, node.signer.sign_tx("operator-1", "stock.receive", receipt))
    [got] = wait_for(lambda: list(receiver.unique().values()))
    assert got.event == "stock.movement"
    assert is_valid_signature(made["secret"], got.signature, got.body)
    assert not is_valid_signature("another-secret-of-16", got.signature, got.body)
    event = json.loads(got.body)
    feed = node.client.get("/v1/events", params={"types": "stock.movement"}).json()["items"]
    assert event == feed[-1] and got.delivery == f"{made['id']}-{event['cursor']}"
    listed = node.client.get("/v1/webhooks").json()["items"]
    assert [s["id"] for s in listed] == [made["id"]] and listed[0]["secret"] is None
    delivered = wait_for(lambda: node.client.get("/v1/webhooks/deliveries").json()["items"])
    assert [(d["id"], d["status"], d["attempts"], d["last_status"]) for d in delivered] == [
        (got.delivery, "delivered", 1, 200)
    ]


def test_a_failing_receiver_is_retried_then_dead_then_replayed_with_the_same_id(node: Node, receiver: Receiver) -> None:
    receiver.plan.fail_rate = 1.0
    made = subscribe(node, receiver.url, ["stock.movement"])
    commit(node.client, node.signer.sign_tx("operator-1", "sku.upsert", {**SKU, "sku": "A"}))
    place = {"location": "LOC", "type": "store", "org": "org-0", "region": "NL", "lat": 0, "lon": 0}
    commit(node.client, node.signer.sign_tx("operator-1", "location.upsert", place))
    commit(
        node.client,
        node.signer.sign_tx("operator-1", "stock.receive", {"location": "LOC", "lines": [{"sku": "A", "qty": 1}]}),
    )

    def dead() -> list[dict[str, Any]]:
        items = node.client.get("/v1/webhooks/deliveries", params={"failed": "true"}).json()["items"]
        return [d for d in items if d["status"] == "dead"]

    [gone] = wait_for(dead)
    assert gone["attempts"] == FAST["webhook_max_attempts"] == receiver.requests
    assert gone["last_status"] == 500 and "receiver down" in gone["last_error"]
    metrics = node.client.get("/metrics").text
    assert 'oms_webhook_deliveries_total{result="dead"} 1.0' in metrics
    receiver.plan.fail_rate = 0.0
    replayed = node.client.post(f"/v1/webhooks/deliveries/{gone['id']}/replay")
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    [got] = wait_for(lambda: list(receiver.unique().values()))
    assert got.delivery == gone["id"] and is_valid_signature(made["secret"], got.signature, got.body)
    again = node.client.post(f"/v1/webhooks/deliveries/{made['id']}-1/replay")
    assert again.status_code == 404 and again.json()["error"] == "not_found"


def test_an_organisation_sees_and_removes_only_its_own_subscriptions(node: Node, receiver: Receiver) -> None:
    theirs = subscribe(node, receiver.url, ["order.created"], node.store)
    assert theirs["org"] == "org-0" and not theirs["sees_all"]
    ours = subscribe(node, receiver.url, ["order.status"])
    store = bearer(node.store)
    assert {s["id"] for s in node.client.get("/v1/webhooks", headers=store).json()["items"]} == {
        theirs["id"],
        ours["id"],
    }
    removed = node.client.delete(f"/v1/webhooks/{theirs['id']}", headers=store)
    assert removed.status_code == 200 and removed.json()["id"] == theirs["id"]
    assert node.client.delete(f"/v1/webhooks/{theirs['id']}", headers=store).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"url": "ftp://x.example/hook", "events": ["order.created"]}, 400, "invalid_subscription"),
        ({"url": "http://x.example/hook", "events": ["order.teleported"]}, 400, "invalid_subscription"),
        ({"url": "http://x.example/hook", "events": []}, 422, "invalid_request"),
        ({"url": "http://x.example/hook", "events": ["order.created"], "secret": "short"}, 400, "invalid_subscription"),
        ({"url": "http://x.example/hook", "events": ["order.created"], "extra": 1}, 422, "invalid_request"),
    ],
)
def test_bad_subscriptions_are_refused(node: Node, body: dict[str, Any], status: int, error: str) -> None:
    response = node.client.post("/v1/webhooks", json=body)
    assert response.status_code == status and response.json()["error"] == error, response.text


def test_webhook_routes_need_their_scopes(node: Node, tmp_path: Path) -> None:
    reader = make_token(tmp_path / "node-0", "store-1", frozenset({"webhooks:read"}))
    assert node.client.get("/v1/webhooks", headers={"authorization": ""}).status_code == 401
    assert node.client.get("/v1/webhooks", headers=bearer(reader)).status_code == 200
    body = {"url": "http://x.example/hook", "events": ["order.created"]}
    assert node.client.post("/v1/webhooks", json=body, headers=bearer(reader)).status_code == 403
    writer = make_token(tmp_path / "node-0", "store-1", frozenset({"webhooks:write"}))
    refused = node.client.post("/v1/webhooks", json=body, headers=bearer(writer))
    assert refused.status_code == 403 and "events:read" in refused.json()["message"]
