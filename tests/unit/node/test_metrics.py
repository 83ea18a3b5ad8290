"""`GET /metrics` of a real node reports what the node committed, and the peer table's and gate's counters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from ledger.genesis import Genesis
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE
from node.home import create_network
from node.metrics import compute_txs_buckets
from node.node import Node
from omsclient import Keyring
from tests.helpers.api import bearer, commit, make_token

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""Every sample of a scrape, by (sample name, labels)."""

SKU = {"price": 100, "currency": "EUR", "tax_class": "standard"}
"""A `sku.upsert` payload but its `sku`."""


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The HTTP API of a single-validator network's node, running in this process."""
    home = tmp_path / "node-0"
    create_network([home], [0], home / CLIENTS_DIR)
    with TestClient(create_app(home), headers=bearer(make_token(home))) as test_client:
        yield test_client


def test_metrics_follow_commits(client: TestClient, tmp_path: Path) -> None:
    home = tmp_path / "node-0"
    keyring = Keyring(
        home / CLIENTS_DIR,
        Genesis.load(home / GENESIS_FILE).chain_id,
        lambda: int(client.get("/v1/status").json()["tx_valid_until"]),
    )
    before = parse(client.get("/metrics").text)
    assert value(before, "oms_blocks_committed_total") == 0
    assert value(before, "oms_txs_committed_total", result="accepted") == 0

    # One tx at a time, each waited for: every block carries exactly one tx.
    outcomes = [
        commit(client, keyring.sign_tx("operator-1", "sku.upsert", {**SKU, "sku": f"SKU-{i}"})) for i in range(3)
    ]
    unknown_location = {"location": "NOWHERE", "lines": [{"sku": "SKU-0", "qty": 1}]}
    outcomes.append(commit(client, keyring.sign_tx("store-1", "stock.receive", unknown_location)))
    assert [o["status"] for o in outcomes] == ["committed"] * 3 + ["rejected"]

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = parse(response.text)
    status = client.get("/v1/status").json()
    assert value(samples, "oms_chain_height") == status["height"] == outcomes[-1]["height"] == 4
    assert value(samples, "oms_blocks_committed_total") == 4
    assert value(samples, "oms_txs_committed_total", result="accepted") == 3
    assert value(samples, "oms_txs_committed_total", result="rejected") == 1
    assert value(samples, "oms_block_txs_bucket", le="1.0") == value(samples, "oms_block_txs_count") == 4
    assert value(samples, "oms_block_txs_sum") == 4
    assert value(samples, "oms_block_proposal_to_commit_seconds_count") == 4
    for stage in ("propose", "log_sync", "commit"):
        assert value(samples, "oms_consensus_stage_seconds_total", stage=stage) > 0, stage
    assert value(samples, "oms_consensus_view") == status["view"] == 0
    assert value(samples, "oms_consensus_is_primary") == 1
    assert value(samples, "oms_mempool_txs") == value(samples, "oms_mempool_bytes") == 0
    assert value(samples, "oms_node_info", node_id="node-0", chain_id=keyring.chain_id) == 1

    openmetrics = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(openmetrics.text)}
    assert families["oms_chain_height"].samples[0].value == status["height"]


def test_metrics_is_documented_outside_v1(tmp_path: Path) -> None:
    operation = create_app(tmp_path).openapi()["paths"]["/metrics"]["get"]
    assert operation["summary"]
    assert "text/plain" in operation["responses"]["200"]["content"]


def test_peer_and_gate_counters_are_reported_by_peer_and_reason(tmp_path: Path) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    node = Node(homes[0])
    try:
        node.peers.record_sent("node-1", 3, 300, rtt_ms=20)
        node.peers.record_received("node-1", 120)
        node.peers.note_height("node-1", 7)
        node.peers.record_error("node-2", "connection refused")
        node.peers.record_queue_drop("node-3", 2)
        asyncio.run(node.transport.receive(b"not a frame"))
        node.oversized_requests += 1
        samples = parse(generate_latest(node.metrics.registry).decode())
    finally:
        asyncio.run(node.close())

    assert value(samples, "oms_peer_messages_sent_total", peer="node-1") == 3
    assert value(samples, "oms_peer_bytes_sent_total", peer="node-1") == 300
    assert value(samples, "oms_peer_messages_received_total", peer="node-1") == 1
    assert value(samples, "oms_peer_bytes_received_total", peer="node-1") == 120
    assert value(samples, "oms_peer_last_height_seen", peer="node-1") == 7
    assert value(samples, "oms_peer_rtt_seconds", peer="node-1") == pytest.approx(0.02)
    assert value(samples, "oms_peer_reachable", peer="node-1") == 1
    assert value(samples, "oms_peer_reachable", peer="node-2") == 0
    assert value(samples, "oms_peer_reachable", peer="node-3") == 0
    assert value(samples, "oms_peer_errors_total", peer="node-2") == 1
    assert value(samples, "oms_peer_send_queue_dropped_total", peer="node-3") == 2
    assert ("oms_peer_rtt_seconds", frozenset({("peer", "node-2")})) not in samples
    assert value(samples, "oms_p2p_envelopes_dropped_total", reason="malformed") == 1
    assert value(samples, "oms_p2p_envelopes_dropped_total", reason="replay") == 0
    assert value(samples, "oms_p2p_oversized_requests_total") == 1
    assert value(samples, "oms_consensus_is_primary") == 1


def test_txs_buckets_end_with_a_full_block() -> None:
    assert compute_txs_buckets(400) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 400)
    assert compute_txs_buckets(1) == (1,)


def test_business_metrics_count_orders_by_channel_and_reason_the_backlog_and_api_requests(
    client: TestClient, tmp_path: Path
) -> None:
    home = tmp_path / "node-0"
    signer = Keyring(
        home / CLIENTS_DIR,
        Genesis.load(home / GENESIS_FILE).chain_id,
        lambda: int(client.get("/v1/status").json()["tx_valid_until"]),
    )
    place = {"location": "LIS-1", "type": "store", "org": "org-0", "region": "PT", "lat": 38_722_000, "lon": -8_600_000}
    setup = [
        ("sku.upsert", {**SKU, "sku": "TEE"}),
        ("location.upsert", place),
        ("stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE", "qty": 5}]}),
    ]
    for kind, payload in setup:
        assert commit(client, signer.sign_tx("operator-1", kind, payload))["status"] == "committed"
    order = {
        "currency": "EUR",
        "customer_hash": "ab" * 32,
        "payment_terms": "on_account",
        "delivery": {"region": "PT", "lat": 38_700_000, "lon": -8_600_000},
    }
    made = commit(
        client,
        signer.sign_tx(
            "channel-1", "order.create", {**order, "external_ref": "A", "lines": [{"sku": "TEE", "qty": 1}]}
        ),
    )
    assert made["status"] == "committed", made
    unknown = {**order, "external_ref": "B", "lines": [{"sku": "NOPE", "qty": 1}]}
    assert commit(client, signer.sign_tx("channel-1", "order.create", unknown))["status"] == "rejected"
    assert client.get("/v1/no-such-route").status_code == 404

    samples = parse(client.get("/metrics").text)
    assert value(samples, "oms_orders_committed_total", channel="channel-1") == 1
    assert value(samples, "oms_orders_rejected_total", channel="channel-1", reason="unknown_sku") == 1
    assert value(samples, "oms_fulfilment_backlog", location="LIS-1") == 1
    assert value(samples, "oms_api_requests_total", route="/v1/tx/{tx_id}", method="GET", status="200") >= 5
    assert value(samples, "oms_api_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(samples, "oms_webhook_pending_deliveries") == 0
    assert value(samples, "oms_seconds_since_commit") >= 0
