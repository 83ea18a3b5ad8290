"""A real node process serves `GET /metrics` that a Prometheus parser reads, with the figures of its status."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import SingleNode

pytestmark = [pytest.mark.e2e]


def scrape(node: SingleNode) -> dict[str, float]:
    """Every unlabelled sample of the node's metrics, by name."""
    response = httpx.get(f"{node.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


def test_metrics_of_a_running_node_match_its_status(single_node: SingleNode) -> None:
    payload = {"price": 1999, "currency": "EUR", "tax_class": "standard"}
    done = [single_node.send("operator-1", "sku.upsert", {**payload, "sku": f"TEE-{size}"}) for size in "SML"]
    assert {d["status"] for d in done} == {"committed"}
    metrics = scrape(single_node)
    status = single_node.client.status()
    assert metrics["oms_chain_height"] == status["height"] == done[-1]["height"]
    assert metrics["oms_blocks_committed_total"] == metrics["oms_block_txs_count"] == status["height"]
    assert metrics["oms_block_txs_sum"] == 3
    assert metrics["oms_block_proposal_to_commit_seconds_count"] == status["height"]
    assert metrics["oms_consensus_view"] == status["view"]
    assert metrics["oms_mempool_txs"] == status["mempool"] == 0
    assert metrics["process_resident_memory_bytes"] > 0
