"""Catching up with real node processes: restart after a kill, a wiped data directory, and state sync.

A 4-node devnet with one tx per block and a short checkpoint interval keeps
committing while one node is down; the node must come back to the same head
hash and the same state commitment as the others, through the HTTP API only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devnet.client import NodeClient, Signer
from devnet.network import Devnet
from ledger.genesis import ConsensusParams
from node.config import DATA_DIR, WAL_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

CHECKPOINT_INTERVAL = 20
LOAD_SECONDS = 20.0
"""How long each test keeps the network committing while a node is down."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    params = ConsensusParams(checkpoint_interval=CHECKPOINT_INTERVAL, max_block_txs=1)
    devnet = Devnet.create(tmp_path_factory.mktemp("sync") / "net", 4, params)
    devnet.start_all()
    devnet.wait_until_up()
    yield devnet
    devnet.stop_all()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def status(url: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = httpx.get(f"{url}/v1/status", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return result


def load(devnet: Devnet, via: int, tag: str, seconds: float = LOAD_SECONDS) -> int:
    """Send one-tx batches to node `via` for `seconds`, each waited for; returns the height reached."""
    signer = Signer(devnet.genesis.chain_id, devnet.clients_dir)
    client = NodeClient(devnet.nodes[via].url)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        txs = [
            signer.tx(
                "operator-1",
                "sku.upsert",
                {"sku": f"{tag}-{sent + i}", "price": 1, "currency": "EUR", "tax_class": "standard"},
            )
            for i in range(20)
        ]
        client.submit_many(txs)
        sent += len(txs)
        client.wait(txs[-1].id.hex(), timeout=60)
    height: int = client.status()["height"]
    client.close()
    return height


def converged(devnet: Devnet, height: int) -> bool:
    rows = [status(node.url) for node in devnet.nodes]
    if any(row is None or row["height"] < height for row in rows):
        return False
    return (
        len({(row["head_hash"], row["state_root"]) for row in rows if row is not None and row["height"] == height}) == 1
    )


def wait_converged(devnet: Devnet, height: int, timeout: float = 90.0) -> list[dict[str, Any]]:
    """Wait until every node is at `height` or beyond and those at `height` agree; returns the block there."""
    wait_for(lambda: converged(devnet, height), timeout, f"all nodes to reach height {height} with one head")
    blocks = [NodeClient(node.url).get(f"/v1/blocks/{height}") for node in devnet.nodes]
    assert len({block["hash"] for block in blocks}) == 1
    return blocks


def wipe(devnet: Devnet, index: int) -> None:
    home = devnet.nodes[index].home
    shutil.rmtree(home / DATA_DIR)
    (home / WAL_FILE).unlink(missing_ok=True)


def test_killed_node_catches_up_to_the_same_head(net: Devnet) -> None:
    load(net, 0, "WARM", seconds=3)
    net.kill(3)
    before = status(net.nodes[0].url)
    assert before is not None
    height = load(net, 0, "KILLED")
    missed = height - before["height"]
    assert missed > 100
    net.start(3)
    started = time.monotonic()
    wait_converged(net, height)
    print(f"\nrestarted node caught up {missed} blocks in {time.monotonic() - started:.1f} s")


def test_wiped_node_rejoins_by_itself(net: Devnet) -> None:
    net.kill(2)
    wipe(net, 2)
    height = load(net, 0, "WIPED")
    net.start(2)
    wait_converged(net, height)
    rejoined = status(net.nodes[2].url)
    assert rejoined is not None and rejoined["base_height"] >= 1
    after = load(net, 2, "REJOINED", seconds=2)
    wait_converged(net, after)


def test_fresh_node_state_syncs_to_the_same_state_commitment(net: Devnet) -> None:
    node = net.nodes[1]
    net.kill(1)
    wipe(net, 1)
    height = load(net, 0, "SNAPSHOT")
    log_path = node.home / "state-sync.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "start", "--home", str(node.home), "--state-sync"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_converged(net, height)
        synced = status(node.url)
        assert synced is not None
        base = synced["base_height"]
        text = log_path.read_text()
        assert "state sync: loaded" in text, text[-2000:]
        assert base > 1 and base % CHECKPOINT_INTERVAL == 0
        response = httpx.get(f"{node.url}/v1/blocks/{base - 1}", timeout=5)
        assert response.status_code == 404 and "state sync" in response.json()["message"]
        assert httpx.get(f"{node.url}/v1/blocks/{base}", timeout=5).status_code == 200
        after = load(net, 1, "AFTER-SNAPSHOT", seconds=2)
        wait_converged(net, after)
    finally:
        process.terminate()
        process.wait(timeout=20)
