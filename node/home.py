"""A whole network on one machine: the homes of its validators, formed as a network of organisations is.

`create_network` makes one organisation per home (a distribution point each),
each with one validator node, through the steps of `omsnode init`,
`client-key create`, `genesis create` and `init --genesis` (`node.forming`):
an identity per node, a key pair per client identity (one for each role, all
of the first organisation, under `clients/`, so that the operator can sign
txs with `omsnode tx`), one genesis built from them, installed in every home. A single-node network
(`omsnode init --port`) and a devnet are made this way.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.genesis import ConsensusParams, Genesis
from node.forming import build_genesis, install_genesis, make_identity, parse_client, save_client_key

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
    clients = [
        parse_client(f"org-0:{client_id}:{'+'.join(roles)}:{save_client_key(clients_dir / f'{client_id}.key')}")
        for client_id, roles in DEFAULT_CLIENTS.items()
    ]
    names = {f"org-{i}": f"Distribution point {i}" for i in range(len(homes))}
    genesis = build_genesis(chain_id or f"oms-{os.urandom(3).hex()}", identities, clients, consensus, names)
    for home in homes:
        install_genesis(home, genesis)
    return genesis
