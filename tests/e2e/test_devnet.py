"""A 4-node devnet of real processes, treated as a black box through `omsnode` and the HTTP API.

Txs sent to any node commit everywhere; after the primary is killed the other
three change view and keep committing; the restarted node catches up to the
same head hash; a node stopped while the primary is killed votes again; a
flood of junk on `/p2p` leaves the API serving.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import pytest

from devnet.network import Devnet
from omsclient import Keyring
from tests.e2e.conftest import omsnode, omsnode_json
from tests.helpers.devnet import Load, status

pytestmark = [pytest.mark.e2e]


def wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def heads(devnet_dir: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = omsnode_json("devnet", "status", "--dir", devnet_dir)
    return rows


def sku_tx(keyring: Keyring, name: str) -> Any:
    return keyring.sign(
        "operator-1", "sku.upsert", {"sku": name, "price": 100, "currency": "EUR", "tax_class": "standard"}
    )


def test_status_json_has_the_agreed_keys(devnet_dir: Any) -> None:
    rows = heads(str(devnet_dir))
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    for row in rows:
        assert set(row) >= {"index", "url", "up", "height", "view", "head_hash", "peers"}
        assert row["up"] and len(row["peers"]) == 3


def test_txs_sent_to_any_node_commit_on_all(devnet: Devnet) -> None:
    keyring = devnet.keyring(devnet.client(0))
    ids = []
    for node in devnet.nodes:
        client = devnet.client(node.index)
        ids.append(client.submit(sku_tx(keyring, f"ANY-{node.index}")))
        client.close()
    for node in devnet.nodes:
        client = devnet.client(node.index)
        for tx_id in ids:
            assert client.wait_tx(tx_id, timeout=60)["status"] == "committed"
        client.close()
    top = min(r["height"] for r in heads(str(devnet.root)))
    blocks = [devnet.client(n.index).get(f"/v1/blocks/{top}")["hash"] for n in devnet.nodes]
    assert len(set(blocks)) == 1


def test_killed_primary_is_replaced_and_restarted_node_catches_up(devnet: Devnet) -> None:
    root = str(devnet.root)
    primary = devnet.status(0)["primary"]
    victim = int(primary.split("-")[1])
    omsnode("devnet", "kill", "--dir", root, "--node", str(victim))
    survivors = [n for n in devnet.nodes if n.index != victim]
    client = devnet.client(survivors[0].index)
    keyring = devnet.keyring(client)
    before = client.status()
    committed = [client.submit(sku_tx(keyring, f"AFTER-KILL-{i}")) for i in range(5)]
    for tx_id in committed:
        assert client.wait_tx(tx_id, timeout=90)["status"] == "committed"
    after = client.status()
    assert after["view"] > before["view"] and after["primary"] != primary
    assert after["height"] > before["height"]
    omsnode("devnet", "restart", "--dir", root, "--node", str(victim))
    more = client.submit(sku_tx(keyring, "AFTER-RESTART"))
    assert client.wait_tx(more, timeout=60)["status"] == "committed"
    client.close()

    def all_same_head() -> bool:
        rows = heads(root)
        return all(r["up"] for r in rows) and len({r["head_hash"] for r in rows}) == 1

    wait_for(all_same_head, timeout=60, what="all four nodes to report the same head hash")


def test_junk_flood_on_p2p_leaves_the_api_serving(devnet: Devnet) -> None:
    target = devnet.nodes[1].url
    with httpx.Client(base_url=target, timeout=5) as http:
        height = http.get("/v1/status").json()["height"]
        for i in range(300):
            body = bytes([i % 256]) * (i * 37 % 2000) if i % 3 else b"\x91\xc4\x03abc"
            assert http.post("/p2p", content=body).status_code < 500
        assert http.get("/v1/status").json()["height"] >= height
    client = devnet.client(1)
    keyring = devnet.keyring(client)
    assert client.wait_tx(client.submit(sku_tx(keyring, "AFTER-JUNK")), timeout=60)["status"] == "committed"
    client.close()


BENCH_KEYS = {
    "orders",
    "committed",
    "rejected",
    "refused",
    "seconds",
    "orders_per_s",
    "latency_ms",
    "blocks",
    "avg_block_txs",
    "cpu_s_per_node",
    "rss_mb_per_node",
}
"""The keys `devnet bench --json` promises to scripts."""


def test_load_and_bench_report_commits_cpu_and_heads(devnet_dir: Any) -> None:
    load = omsnode_json("devnet", "load", "--dir", str(devnet_dir), "--orders", "300")
    bulk = omsnode_json(
        "devnet", "bench", "--dir", str(devnet_dir), "--orders", "250", "--concurrency", "2", "--batch", "20"
    )
    for result in (load, bulk):
        assert set(result) >= BENCH_KEYS
        assert result["committed"] == result["orders"] and result["rejected"] == 0 and result["refused"] >= 0
        assert result["orders_per_s"] > 0 and result["latency_ms"]["p99"] >= result["latency_ms"]["p50"] > 0
        assert len(result["cpu_s_per_node"]) == len(result["rss_mb_per_node"]) == 4
        assert all(cpu > 0 for cpu in result["cpu_s_per_node"]) and all(rss > 30 for rss in result["rss_mb_per_node"])
        assert len({n["head_hash"] for n in result["nodes"] if n["up"]}) == 1
    assert load["orders"] == 300 and load["blocks"] >= 1
    assert bulk["avg_block_txs"] * bulk["blocks"] >= 13, "250 orders in txs of 20 are 13 txs"
    check = omsnode_json("devnet", "check", "--dir", str(devnet_dir), "--blocks", "0")
    assert check["healthy"], check["problems"]
    assert len(set(check["views"])) == 1 and check["pending"] == [0, 0, 0, 0]


def test_demo_walks_its_scenario_through_the_api(devnet_dir: Any) -> None:
    """Every step of `devnet demo` is a tx through one node and every check a read of the node that committed
    it: the scenario's own checks (`devnet.scenario`) pass on real processes."""
    demo = omsnode("devnet", "demo", "--dir", str(devnet_dir), timeout=600)
    steps = [line for line in demo.stdout.splitlines() if line.split(". ")[0].isdigit()]
    assert len(steps) == 14 and steps[-1].startswith("14. Stock journal"), demo.stdout
    assert "return_in" in demo.stdout


VOTE_AGAIN_S = 30.0
"""Every node must vote again within this long after the fault is over (issue's bound, a wait deadline)."""


def test_a_node_stopped_while_the_primary_is_killed_votes_again(devnet: Devnet) -> None:
    """Under light load, one backup is stopped (SIGSTOP) for 5 s while the primary is killed; once the primary is
    restarted, all four nodes vote again: each one's signature is in the certificate of a block committed since."""
    net = Devnet(devnet.root)  # the processes as the devnet state holds them now (other tests restart nodes)
    ids = net.genesis.validator_ids()
    primary = ids.index(net.status(0)["primary"])
    stopped = (primary + 2) % len(ids)
    load = Load(net)
    load.thread.start()
    try:
        wait_for(lambda: len(load.tx_ids) >= 20, 120, "the load to commit")
        pid = net.node(stopped).pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            net.kill(primary)
            time.sleep(5)
        finally:
            os.kill(pid, signal.SIGCONT)
        net.start(primary)
        net.wait_until_up([primary], timeout=120)
        since = max(net.status(i)["height"] for i in range(len(ids)))
        signed: dict[int, set[str]] = {}
        """Height -> the validators whose commits certify it (read from any node that has it)."""

        def all_vote_again() -> bool:
            rows = [status(node.url) or {} for node in net.nodes]
            for index, row in enumerate(rows):
                with net.client(index) as client:
                    for height in range(since + 1, row.get("height", 0) + 1):
                        if height not in signed:
                            block = client.get(f"/v1/blocks/{height}")
                            signed[height] = {validator for validator, _ in block["certificate"]["signatures"]}
            voted = set().union(*signed.values())
            return voted == set(ids) and all(row.get("last_voted_height", 0) > since for row in rows)

        wait_for(all_vote_again, VOTE_AGAIN_S, f"every node's commits in a certificate past height {since}")
    finally:
        load.stop.set()
        load.thread.join(timeout=180)
    assert load.error is None, load.error
