"""The node's alert rules raise `alert` events on its feed when a subject starts and stops firing."""

from __future__ import annotations

import dataclasses
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
from tests.helpers.receiver import Plan, Receiver

QUICK = {
    "alert_interval_ms": 50,
    "alert_stall_ms": 300,
    "alert_peer_unreachable_ms": 300,
    "alert_webhook_failures": 2,
    "webhook_retry_base_ms": 50,
    "webhook_retry_cap_ms": 100,
    "webhook_max_attempts": 20,
}


def configure(home: Path, **settings: Any) -> None:
    NodeConfig.save(dataclasses.replace(NodeConfig.load(home), **settings), home)


def start(homes: list[Path]) -> TestClient:
    """The app of the first of `homes` (the others' nodes are never started)."""
    create_network(homes, [0] * len(homes), homes[0] / CLIENTS_DIR)
    configure(homes[0], **QUICK)
    return TestClient(create_app(homes[0]), headers=bearer(make_token(homes[0])))


def signer_of(client: TestClient, home: Path) -> Keyring:
    valid_until = lambda: int(client.get("/v1/status").json()["tx_valid_until"])  # noqa: E731
    return Keyring(home / CLIENTS_DIR, Genesis.load(home / GENESIS_FILE).chain_id, valid_until)


def alerts(client: TestClient) -> list[dict[str, Any]]:
    return [e["data"] for e in client.get("/v1/events", params={"types": "alert", "limit": 500}).json()["items"]]


def wait_for(condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(Plan(fail_rate=1.0))
    yield server
    server.close()


def test_a_lone_validator_of_two_alerts_an_unreachable_peer_and_stalled_consensus(tmp_path: Path) -> None:
    homes = [tmp_path / "node-0", tmp_path / "node-1"]
    with start(homes) as client:
        peer = wait_for(lambda: [a for a in alerts(client) if a["rule"] == "peer_unreachable"])
        assert [(a["subject"], a["state"], a["node"]) for a in peer] == [("node-1", "firing", "node-0")]
        tx = signer_of(client, homes[0]).sign_tx(
            "operator-1", "sku.upsert", {"sku": "A", "price": 1, "currency": "EUR", "tax_class": "standard"}
        )
        assert client.post("/v1/tx", json={**tx.to_wire(), "signature": tx.signature.hex()}).status_code == 202
        stalled = wait_for(lambda: [a for a in alerts(client) if a["rule"] == "consensus_stalled"])
        assert stalled[0]["state"] == "firing" and "1 txs wait" in stalled[0]["message"]
        metrics = client.get("/metrics").text
        assert 'oms_alerts_firing{rule="peer_unreachable"} 1.0' in metrics
        assert 'oms_alerts_firing{rule="consensus_stalled"} 1.0' in metrics
        assert len(alerts(client)) == 2, "a rule that keeps firing is raised once"


def test_failing_webhooks_and_short_stock_fire_then_resolve(tmp_path: Path, receiver: Receiver) -> None:
    home = tmp_path / "node-0"
    with start([home]) as client:
        signer = signer_of(client, home)
        made = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["stock.movement"]}).json()
        place = {"location": "LOC", "type": "store", "org": "org-0", "region": "NL", "lat": 0, "lon": 0}
        for kind, payload in (
            ("sku.upsert", {"sku": "A", "price": 1, "currency": "EUR", "tax_class": "standard"}),
            ("location.upsert", place),
            ("stock.receive", {"location": "LOC", "lines": [{"sku": "A", "qty": 2}]}),
            ("stock.safety", {"location": "LOC", "sku": "A", "qty": 5}),
        ):
            assert commit(client, signer.sign_tx("operator-1", kind, payload))["status"] == "committed"
        by_rule = lambda rule: [(a["subject"], a["state"]) for a in alerts(client) if a["rule"] == rule]  # noqa: E731
        assert wait_for(lambda: by_rule("webhook_failing")) == [(made["id"], "firing")]
        assert wait_for(lambda: by_rule("stock_below_safety")) == [("LOC/A", "firing")]
        receiver.plan.fail_rate = 0.0
        assert commit(
            client,
            signer.sign_tx("operator-1", "stock.receive", {"location": "LOC", "lines": [{"sku": "A", "qty": 9}]}),
        )
        wait_for(lambda: len(by_rule("stock_below_safety")) == 2)
        assert by_rule("stock_below_safety")[1] == ("LOC/A", "resolved")
        wait_for(lambda: len(by_rule("webhook_failing")) == 2)
        assert by_rule("webhook_failing")[1] == (made["id"], "resolved")
