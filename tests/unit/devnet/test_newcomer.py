"""A validator's node that genesis does not list, made beside a devnet's nodes (`reconfigure`), and its taking
the place of a removed one in the devnet's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.chaos.reconfigure import make_newcomer_home
from devnet.network import Devnet
from ledger.personal import ENCRYPTION_KEY_FILE
from node.config import KEY_FILE, NodeConfig


def test_a_newcomer_gets_its_own_id_key_port_and_address_and_takes_a_stopped_nodes_place(tmp_path: Path) -> None:
    devnet = Devnet.create(tmp_path / "net", 4, test_faults=True)
    model = devnet.node(1).home
    newcomer = make_newcomer_home(devnet, 1, "org-1")
    config = NodeConfig.load(newcomer.home)
    assert (newcomer.index, config.node_id, config.org) == (4, "node-4", "org-1")
    assert config.port == newcomer.port != NodeConfig.load(model).port
    assert config.advertise == f"127.0.0.1:{newcomer.port}" and config.test_faults
    assert (newcomer.home / KEY_FILE).read_bytes() != (model / KEY_FILE).read_bytes()
    assert (newcomer.home / ENCRYPTION_KEY_FILE).read_bytes() == (model / ENCRYPTION_KEY_FILE).read_bytes()

    with pytest.raises(ValueError, match="only if it is last"):
        devnet.take_place(1, 2)
    devnet.take_place(1, newcomer.index)
    assert [(n.index, n.home.name) for n in Devnet(devnet.root).nodes] == [
        (0, "node-0"),
        (1, "node-4"),
        (2, "node-2"),
        (3, "node-3"),
    ]
    assert make_newcomer_home(devnet, 1, "org-1").home.name == "node-5", "node-4's home is taken"
