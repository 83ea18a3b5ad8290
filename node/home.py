"""A whole network on one machine: the homes of its validators, formed as a network of organisations is.

`create_network` makes one organisation per home (a distribution point each),
each with one validator node, through the same steps as organisations on
separate machines (`node.forming`): an identity per node, one genesis built
from them, installed in every home. It also makes a client identity for each
role, all of the first organisation, whose keys are written under `clients/`
so that the operator can sign txs with `omsnode tx`. A single-node network
(`omsnode init --port`) and a devnet are made this way.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.genesis import ConsensusParams, Genesis, Identity
from ledger.keys import PrivateKey
from node.forming import build_genesis, install_genesis, make_identity

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
    """Make a home per validator (`org-i`, `node-i`, on `host` and its port), the client keys and the genesis."""
    for home in homes:
        if home.exists() and any(home.iterdir()):
            raise FileExistsError(f"{home} already holds a node; choose another --home or remove it")
    identities = [
        make_identity(home, f"org-{i}", f"node-{i}", f"{host}:{port}")
        for i, (home, port) in enumerate(zip(homes, ports, strict=True))
    ]
    clients_dir.mkdir(parents=True, exist_ok=True)
    clients = []
    for client_id, roles in DEFAULT_CLIENTS.items():
        key = PrivateKey.generate()
        key.save(clients_dir / f"{client_id}.key")
        clients.append(Identity(client_id, "org-0", key.public, frozenset(roles)))
    names = {f"org-{i}": f"Distribution point {i}" for i in range(len(homes))}
    genesis = build_genesis(chain_id or f"oms-{os.urandom(3).hex()}", identities, clients, consensus, names)
    for home in homes:
        install_genesis(home, genesis)
    return genesis
