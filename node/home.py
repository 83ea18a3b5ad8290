"""Node home directories: create keys, genesis and config for a new network or a joining node.

A home holds `config.toml`, `genesis.json`, `node_key` and `data/`. A new
network gets one organisation per validator (one distribution point each)
and a client identity for each role, whose keys are written under
`clients/` so that the operator can sign txs with `omsnode tx`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ledger.errors import InvalidGenesis
from ledger.genesis import ConsensusParams, Genesis, Identity
from ledger.keys import PrivateKey
from node.config import GENESIS_FILE, KEY_FILE, NodeConfig

DEFAULT_CLIENTS = {
    "channel-1": ("channel",),
    "store-1": ("store",),
    "operator-1": ("operator",),
    "auditor-1": ("auditor",),
    "psp-1": ("payment_provider",),
}
"""Client identities of a new network: a sales channel, a store, an operator, an auditor and a payment
provider."""


def create_network(
    homes: list[Path],
    ports: list[int],
    clients_dir: Path,
    chain_id: str | None = None,
    consensus: ConsensusParams | None = None,
    host: str = "127.0.0.1",
) -> Genesis:
    """Make keys, a genesis with one validator per home, and the homes themselves."""
    chain_id = chain_id or f"oms-{os.urandom(3).hex()}"
    keys = [PrivateKey.generate() for _ in homes]
    orgs = tuple({"id": f"org-{i}", "name": f"Distribution point {i}"} for i in range(len(homes)))
    validators = tuple(
        Identity(f"node-{i}", f"org-{i}", key.public, frozenset({"validator"}), f"http://{host}:{port}")
        for i, (key, port) in enumerate(zip(keys, ports, strict=True))
    )
    clients_dir.mkdir(parents=True, exist_ok=True)
    clients = []
    for client_id, roles in DEFAULT_CLIENTS.items():
        key = PrivateKey.generate()
        key.save(clients_dir / f"{client_id}.key")
        clients.append(Identity(client_id, "org-0", key.public, frozenset(roles)))
    genesis = Genesis(
        chain_id, int(time.time() * 1000), orgs, validators, tuple(clients), consensus or ConsensusParams()
    )
    for i, (home, key, port) in enumerate(zip(homes, keys, ports, strict=True)):
        _write_home(home, genesis, key, NodeConfig(node_id=f"node-{i}", host=host, port=port))
    return genesis


def join_network(home: Path, genesis_file: Path, key_file: Path, port: int, host: str = "127.0.0.1") -> NodeConfig:
    """Make a home for an existing network from its genesis and this node's validator key."""
    genesis = Genesis.load(genesis_file)
    key = PrivateKey.load(key_file)
    matches = [v for v in genesis.validators if v.public_key == key.public]
    if not matches:
        raise InvalidGenesis(f"the key in {key_file} is not a validator key of {genesis.chain_id!r}")
    config = NodeConfig(node_id=matches[0].id, host=host, port=port)
    _write_home(home, genesis, key, config)
    return config


def _write_home(home: Path, genesis: Genesis, key: PrivateKey, config: NodeConfig) -> None:
    if (home / GENESIS_FILE).exists():
        raise FileExistsError(f"{home} already holds a node; choose another --home or remove it")
    home.mkdir(parents=True, exist_ok=True)
    genesis.save(home / GENESIS_FILE)
    key.save(home / KEY_FILE)
    config.save(home)
