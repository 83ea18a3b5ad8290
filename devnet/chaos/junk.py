"""Hostile traffic during load: malformed and forged requests on every node's API and `/p2p`.

`junk` sends, for `seconds`, rounds of what a broken or hostile client or
peer sends, to every node in turn, from another source address than the
nodes' own (127.0.0.2: a machine of its own, so what the nodes charge to the
junk's source never falls on their peers): JSON cut short, txs missing
fields, txs whose payload was changed after signing, txs signed by a key
the membership does not hold, a committed tx sent again, msgpack nested
past every bound, random bytes and junk frames on `/p2p`, and reads with
parameters out of range or a made-up token. Every answer must be a refusal
(4xx): a 5xx is a violation. Meanwhile the load goes on and the network must
keep committing.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import msgpack

from devnet.chaos.load import CHANNEL
from devnet.chaos.stage import Stage
from ledger.keys import PrivateKey
from omsclient import Keyring
from omsclient.signing import Signer, tx_to_json

SOURCE_ADDRESS = "127.0.0.2"
"""Where the junk comes from: another loopback address than the nodes' own."""

DEEP = 100_000
"""Nesting depth of the deepest msgpack sent: far past the decoder's bound and Python's stack."""

JSON = {"content-type": "application/json"}

Request = tuple[str, str, dict[str, Any]]
"""(method, path, httpx keyword arguments)."""


def junk(stage: Stage) -> None:
    """Hostile traffic to every node for `seconds` while the load runs; no 5xx, and commits go on."""
    keyring = Keyring(stage.devnet.clients_dir, stage.devnet.genesis.chain_id, stage.load.valid_until)
    transport = httpx.HTTPTransport(local_address=SOURCE_ADDRESS)
    sent, refused, failed = 0, 0, 0
    stage.fault("hostile traffic on every node's API and /p2p")
    deadline = time.monotonic() + stage.seconds
    with httpx.Client(transport=transport, timeout=10.0) as http:
        while time.monotonic() < deadline:
            for node in stage.devnet.nodes:
                for method, path, kwargs in make_requests(keyring, stage.load.any_acknowledged()):
                    try:
                        answer = http.request(method, node.url + path, **kwargs)
                    except httpx.TransportError:
                        failed += 1
                        continue
                    sent += 1
                    if answer.status_code >= 500:
                        stage.problems.append(f"node {node.index} answered {method} {path} with {answer.status_code}")
                    refused += 400 <= answer.status_code < 500
    stage.heal(f"{sent} hostile requests answered ({refused} refused, {failed} not answered)")
    if stage.marks.heal_height <= stage.marks.fault_height:
        stage.problems.append("no block was committed while the hostile traffic went on")


def make_requests(keyring: Keyring, committed: dict[str, Any] | None) -> list[Request]:
    """One round of hostile requests."""
    order = {
        "external_ref": f"junk-{os.urandom(4).hex()}",
        "currency": "EUR",
        "customer_hash": "0" * 64,
        "lines": [{"sku": "NONE", "qty": 1}],
    }
    forged = keyring.sign(CHANNEL, "order.create", order)
    forged["payload"] = {**forged["payload"], "external_ref": "changed-after-signing"}
    stranger = Signer(CHANNEL, PrivateKey.generate())
    unknown = tx_to_json(
        stranger.sign_tx("order.create", order, chain_id=keyring.chain_id, valid_until=keyring.valid_until())
    )
    deep = b"\x91" * DEEP + b"\xc0"
    requests: list[Request] = [
        ("POST", "/v1/tx", {"content": b'{"kind": "order.create", "payload": {', "headers": JSON}),
        ("POST", "/v1/tx", {"json": {"kind": "order.create", "payload": order}}),
        ("POST", "/v1/tx", {"json": forged}),
        ("POST", "/v1/tx", {"json": unknown}),
        ("POST", "/v1/txs", msgpack_body(deep)),
        ("POST", "/v1/txs", msgpack_body(os.urandom(300))),
        ("POST", "/v1/txs", msgpack_body(msgpack.packb([{"kind": 1, "payload": [None] * 50}]))),
        ("POST", "/p2p", {"content": os.urandom(500)}),
        ("POST", "/p2p", {"content": deep}),
        ("POST", "/p2p", {"content": msgpack.packb([os.urandom(120) for _ in range(20)], use_bin_type=True)}),
        ("GET", "/v1/blocks/0", {}),
        ("GET", "/v1/tx/not-hex", {}),
        ("GET", "/v1/orders", {"params": {"limit": 10**9}, "headers": {"authorization": "Bearer made-up"}}),
        ("GET", "/p2p/blocks", {"params": {"from": -5, "count": 10**12}}),
    ]
    if committed is not None:
        requests.append(("POST", "/v1/tx", {"json": committed}))
    return requests


def msgpack_body(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": "application/msgpack"}}
