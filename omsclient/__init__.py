"""omsclient: the integrator's Python client of an oms-ledger node.

Sign txs with your own keys (`Signer`), submit them and wait for their
commit (`Client.submit`, `Client.wait_tx`), call the resource routes
(`Client.get`, `Client.post`), read lists page by page (`Client.pages`) and
follow the change feed (`Client.follow`), with retries that never act twice.
It speaks to a node only over its public HTTP API.

    from omsclient import Client, Signer

    client = Client("http://127.0.0.1:26600", token)
    signer = Signer.from_key_file("channel-1.key", "channel-1")
    tx = signer.sign("order.create", order, chain_id=client.chain_id(), valid_until=client.valid_until())
    print(client.wait_tx(client.submit(tx))["status"])
"""

from omsclient.client import Client, NodeError
from omsclient.signing import Keyring, Signer, tx_id

__all__ = ["Client", "Keyring", "NodeError", "Signer", "tx_id"]
