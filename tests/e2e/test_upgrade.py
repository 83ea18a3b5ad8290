"""The node-release upgrade procedure, node by node on a live network: backup, stop, start again, rejoin and vote.

The README's procedure installs a new release one organisation at a time.
Here every node goes through its steps in turn (the release installed is the
same code) while a load runs: the network never stops committing, each
restarted node is back at the network's height and voting before the next
one goes, and in the end every tx is on every node and every chain
verifies.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from devnet.network import Devnet
from tests.e2e.conftest import omsnode
from tests.helpers.devnet import Load, status, wait_converged, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def test_every_node_restarted_in_turn_under_load_rejoins_and_the_network_keeps_committing(tmp_path: Path) -> None:
    devnet = Devnet.create(tmp_path / "net", 4)
    devnet.start_all()
    load = Load(devnet)
    try:
        devnet.wait_until_up(timeout=120)
        load.thread.start()
        wait_for(lambda: len(load.tx_ids) >= 20, 240, "the load to commit")
        for index in range(4):
            node = devnet.node(index)
            omsnode("backup", "--home", str(node.home), "--out", str(tmp_path / f"before-{index}.tar.gz"))
            assert node.pid is not None
            os.kill(node.pid, signal.SIGTERM)
            os.waitpid(node.pid, 0)
            devnet.kill(index)  # already stopped: forget its process
            committed = len(load.tx_ids)
            down = f"commits while node {index} is down"
            wait_for(lambda committed=committed: len(load.tx_ids) >= committed + 10, 240, down)
            devnet.start(index)
            devnet.wait_until_up([index], timeout=120)
            height = devnet.client((index + 1) % 4).status()["height"]

            def is_back(index: int = index, height: int = height) -> bool:
                row = status(devnet.node(index).url)
                return row is not None and row["height"] >= height and row["voting"]

            wait_for(is_back, 240, f"node {index} to be back at height {height} and voting")
        load.stop.set()
        load.thread.join(timeout=240)
        assert load.error is None, load.error
        height = devnet.client(0).status()["height"]
        wait_converged(devnet, height, timeout=240)
        for index in range(4):
            client = devnet.client(index)
            assert all(client.get(f"/v1/tx/{tx_id}")["status"] == "committed" for tx_id in load.tx_ids)
    finally:
        load.stop.set()
        devnet.stop_all()
    for node in devnet.nodes:
        report = json.loads(omsnode("verify-chain", "--home", str(node.home), "--json").stdout)
        assert report["ok"] and report["height"] >= height, report
