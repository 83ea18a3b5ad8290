"""`omsnode devnet demo`: the demo scenario against a running devnet, through the real API.

Every step is a client-signed tx sent to one of the live nodes (round-robin)
and followed until committed; every check is a GET on a node's API.
"""

from __future__ import annotations

from itertools import cycle
from typing import Any

from devnet.network import Devnet
from devnet.scenario import run_demo

LISTS = frozenset({"/v1/inventory", "/v1/journal", "/v1/invoices"})
"""Routes the scenario reads as whole lists (the API answers them a page at a time)."""


def run_devnet_demo(devnet: Devnet, say: Any = print) -> None:
    live = [n for n in devnet.nodes if devnet.status(n.index)["up"]]
    if not live:
        raise RuntimeError("no node of the devnet is up")
    clients = [devnet.client(n.index) for n in live]
    rotation = cycle(clients)
    keyring = devnet.keyring(clients[0])

    def submit(signer_id: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        client = next(rotation)
        status = client.wait_tx(client.submit(keyring.sign(signer_id, kind, payload)))
        receipt: dict[str, Any] = status["receipt"]
        return receipt

    def query(path: str, params: dict[str, Any] | None) -> Any:
        client = next(rotation)
        return list(client.pages(path, **(params or {}))) if path in LISTS else client.get(path, **(params or {}))

    say(f"demo on devnet {devnet.genesis.chain_id!r} ({len(live)} live nodes)")
    try:
        run_demo(submit, query, say)
    finally:
        for client in clients:
            client.close()
