"""`GET /v1/activity` of a real node: recent commits, backlog, channels and alerts, each as the token may see them.

A location of a second organisation (added by governance) serves an order beside one of the first's: the
operator sees the backlog of both, a store of the first organisation only its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.genesis import Genesis
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE
from node.home import create_network
from node.tokens import parse_scopes
from omsclient import Keyring
from tests.helpers.api import bearer, commit, make_token


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "node-0"
    create_network([home], [0], home / CLIENTS_DIR)
    return home


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(home), headers=bearer(make_token(home))) as test_client:
        yield test_client


def send(client: TestClient, keyring: Keyring, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    done = commit(client, keyring.sign_tx(signer, kind, payload))
    assert done["status"] == "committed", done.get("reason", done)
    return done


def test_activity_shows_commits_and_channels_and_each_organisation_its_own_backlog(
    client: TestClient, home: Path
) -> None:
    genesis = Genesis.load(home / GENESIS_FILE)
    keyring = Keyring(
        home / CLIENTS_DIR, genesis.chain_id, lambda: int(client.get("/v1/status").json()["tx_valid_until"])
    )
    porto = {"org": "org-9", "name": "Porto"}
    send(client, keyring, "operator-1", "governance.propose", {"action": "org.add", "params": porto})
    send(
        client,
        keyring,
        "operator-1",
        "sku.upsert",
        {"sku": "TEE", "price": 100, "currency": "EUR", "tax_class": "standard"},
    )
    for location, org, lat in (("LIS-1", "org-0", 38_722_000), ("OPO-9", "org-9", 41_150_000)):
        place = {"location": location, "type": "store", "org": org, "region": "PT", "lat": lat, "lon": -8_600_000}
        place["pickup_allowed"] = True
        send(client, keyring, "operator-1", "location.upsert", place)
        send(
            client, keyring, "operator-1", "stock.receive", {"location": location, "lines": [{"sku": "TEE", "qty": 5}]}
        )
    order = {"currency": "EUR", "customer_hash": "ab" * 32, "payment_terms": "on_account"}
    for n, pickup in enumerate(("LIS-1", "OPO-9")):
        placed = {**order, "external_ref": f"A{n}", "pickup": pickup, "lines": [{"sku": "TEE", "qty": 1}]}
        send(client, keyring, "channel-1", "order.create", placed)
    refused = {**order, "external_ref": "B", "pickup": "LIS-1", "lines": [{"sku": "NOPE", "qty": 1}]}
    assert commit(client, keyring.sign_tx("channel-1", "order.create", refused))["status"] == "rejected"
    height = client.get("/v1/status").json()["height"]

    answer = client.get("/v1/activity")
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["viewer"] == {
        "identity": "operator-1",
        "org": "org-0",
        "roles": ["operator"],
        "scopes": sorted(seen["viewer"]["scopes"]),
        "sees_all": True,
    }
    commits = seen["commits"]
    assert [c["height"] for c in commits] == list(range(1, height + 1))
    assert all(c["txs"] == 1 and c["latency_ms"] >= 0 and c["time_ms"] <= seen["now_ms"] for c in commits)
    assert seen["backlog"] == [{"location": "LIS-1", "open": 1}, {"location": "OPO-9", "open": 1}]
    (channel,) = seen["channels"]
    assert channel["channel"] == "channel-1" and (channel["orders_committed"], channel["orders_refused"]) == (2, 1)
    assert commits[-3]["time_ms"] <= channel["last_order_ms"] <= commits[-1]["time_ms"]

    token = make_token(home, "store-1", parse_scopes("orders:read"))
    answer = client.get("/v1/activity", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    theirs = answer.json()
    assert theirs["viewer"]["identity"] == "store-1" and theirs["viewer"]["sees_all"] is False
    assert theirs["commits"] == commits
    assert theirs["backlog"] == [{"location": "LIS-1", "open": 1}], "the other organisation's store is not shown"
    assert theirs["channels"] == seen["channels"] and theirs["alerts"] == []
    assert client.get("/v1/activity", headers={"authorization": ""}).status_code == 401
