"""Backup of a running node under load, wipe, restore: the node rejoins and catches up with nothing lost."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from devnet.network import Devnet
from tests.e2e.conftest import omsnode
from tests.helpers.devnet import Load, wait_converged, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def test_a_running_node_backed_up_wiped_and_restored_catches_up_with_nothing_lost(tmp_path: Path) -> None:
    devnet = Devnet.create(tmp_path / "net", 4)
    devnet.start_all()
    try:
        devnet.wait_until_up(timeout=120)
        load = Load(devnet)
        load.thread.start()
        wait_for(lambda: len(load.tx_ids) >= 30, 240, "some load to commit")
        home = devnet.node(3).home
        backup = tmp_path / "node-3.tar.gz"
        made = omsnode("backup", "--home", str(home), "--out", str(backup), "--with-keys").stdout
        assert "running node" in made
        with tarfile.open(backup) as tar:
            names = set(tar.getnames())
        assert {"config.toml", "genesis.json", "api_tokens.json", "node_key", "data.kv"} <= names
        without_keys = tmp_path / "no-keys.tar.gz"
        omsnode("backup", "--home", str(home), "--out", str(without_keys))
        with tarfile.open(without_keys) as tar:
            assert not {n for n in tar.getnames() if n == "node_key" or n.startswith("clients/")}

        devnet.kill(3)
        shutil.rmtree(home)
        refused = omsnode("restore", "--home", str(home), str(without_keys), check=False)
        assert refused.returncode != 0 and "holds no keys" in refused.stderr
        shutil.rmtree(home, ignore_errors=True)
        omsnode("restore", "--home", str(home), str(backup))
        assert (home / "node_key").stat().st_mode & 0o077 == 0
        wait_for(lambda: len(load.tx_ids) >= 60, 240, "more load while the node is down")
        devnet.start(3)
        devnet.wait_until_up([3], timeout=120)
        wait_for(lambda: len(load.tx_ids) >= 90, 240, "more load after the restore")
        load.stop.set()
        load.thread.join(timeout=180)
        assert load.error is None, load.error
        height = devnet.client(0).status()["height"]
        wait_converged(devnet, height, timeout=240)
        restored = devnet.client(3)
        for tx_id in load.tx_ids:
            assert restored.get(f"/v1/tx/{tx_id}")["status"] == "committed", tx_id
    finally:
        devnet.stop_all()
    report = json.loads(omsnode("verify-chain", "--home", str(home), "--json").stdout)
    assert report["ok"] and report["height"] >= height, report
