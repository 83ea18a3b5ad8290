"""`omsnode devnet demo`: the demo scenario against a running devnet, through the real API.

Every step is a client-signed tx sent to one of the live nodes (round-robin)
and followed until committed; every check is a GET on the node that
committed the step before it. A node answers with what it has committed, and
another node may not have applied that block yet: reading there could miss
the step just taken.
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
    last = clients[0]
    """The node that committed the last step."""

    def submit(signer_id: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal last
        last = next(rotation)
        status = last.wait_tx(last.submit(keyring.sign(signer_id, kind, payload)))
        receipt: dict[str, Any] = status["receipt"]
        return receipt

    def query(path: str, params: dict[str, Any] | None) -> Any:
        return list(last.pages(path, **(params or {}))) if path in LISTS else last.get(path, **(params or {}))

    say(f"demo on devnet {devnet.genesis.chain_id!r} ({len(live)} live nodes)")
    try:
        run_demo(submit, query, say)
    finally:
        for client in clients:
            client.close()
