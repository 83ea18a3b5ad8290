"""Every hostile class at once against a 4-node devnet of real processes, through the real HTTP routes.

Each node receives poisoned nested values, oversized bodies, txs with bad
signatures (until its address has spent its budget of failed checks),
replayed and expired txs, junk and forged `/p2p` frames, lone surrogates and
out-of-range heights; every answer is a 4xx. Then the network
must still commit, every node must restart from its own data to the same head,
and `omsnode verify-chain` must pass on every node.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgpack
import pytest

from cli.main import main as omsnode
from devnet.network import Devnet
from ledger.tx import Tx
from node.api.limits import MAX_BODY_BYTES
from omsclient.signing import tx_to_json
from p2p.envelope import Envelope, encode_envelope
from p2p.inbox import encode_frame
from tests.adversarial.hostile import deep_array, deep_map
from tests.helpers.devnet import wait_converged

pytestmark = [pytest.mark.e2e]

MSGPACK = {"content-type": "application/msgpack"}
JSON = {"content-type": "application/json"}

Attack = Callable[[httpx.Client, "Hostile"], list[httpx.Response]]


class Hostile:
    """What the attacks need: the devnet's chain, a signer, and a tx committed earlier."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.client = devnet.client(0)
        self.keyring = devnet.keyring(self.client)
        self.sent = 0
        self.committed = self.commit()

    def tx(self) -> Tx:
        self.sent += 1
        payload = {"sku": f"HOSTILE-{self.sent}", "price": 1, "currency": "EUR", "tax_class": "standard"}
        return self.keyring.sign_tx("operator-1", "sku.upsert", payload)

    def commit(self) -> Tx:
        """A tx sent to node 0 and committed."""
        tx = self.tx()
        assert self.client.wait_tx(self.client.submit(tx_to_json(tx)), timeout=60)["status"] == "committed"
        return tx


def as_json(tx: Tx, **changes: Any) -> dict[str, Any]:
    return {**tx_to_json(tx), **changes}


def poison_nested_values(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    deep_json = json.dumps(as_json(hostile.tx(), payload={"x": "X"})).replace('"X"', "[" * 100_000 + "]" * 100_000)
    past_tx_depth = json.dumps(as_json(hostile.tx(), payload={"x": "X"})).replace('"X"', "[" * 20 + "]" * 20)
    return [
        http.post("/v1/tx", content=deep_json.encode(), headers=JSON),
        http.post("/v1/tx", content=past_tx_depth.encode(), headers=JSON),
        http.post("/v1/txs", content=b"\x91" + deep_array(100_000), headers=MSGPACK),
        http.post("/v1/txs", content=b"\x91" + deep_map(1_100), headers=MSGPACK),
    ]


def oversized_bodies(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    body = b" " * (MAX_BODY_BYTES + 1)
    return [http.post("/v1/txs", content=body, headers=MSGPACK), http.post("/p2p", content=body)]


def bad_signatures(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    forged = [{**hostile.tx().to_wire(), "signature": bytes(64)} for _ in range(200)]
    batch = http.post("/v1/txs", content=msgpack.packb(forged, use_bin_type=True), headers=MSGPACK)
    assert batch.json()[-1]["error"] == "signature_checks_exhausted", "the address's budget of failed checks ran out"
    return [http.post("/v1/tx", json=as_json(hostile.tx(), signature=bytes(64).hex())), batch]


def replayed_and_expired_txs(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    old = hostile.committed
    expired = hostile.keyring.signer(old.signer).sign_tx(
        old.kind, old.payload, chain_id=old.chain_id, valid_until=1, nonce=old.nonce + 1
    )
    replay = http.post("/v1/tx", json=as_json(old))
    assert replay.json()["error"] == "duplicate_transaction", replay.text
    late = http.post("/v1/tx", json=as_json(expired))
    assert late.json()["error"] == "expired_transaction", late.text
    return [replay, late]


def junk_p2p_frames(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    chain = hostile.devnet.genesis.chain_id
    forged = [
        encode_envelope(
            Envelope(
                sender="node-0",
                recipient=recipient,
                chain_id=chain,
                seq=10**15 + i,
                kind="consensus",
                body=b"x",
                signature=bytes(64),
            )
        )
        for i in range(125)
        for recipient in hostile.devnet.genesis.validator_ids()
    ]
    bodies = [b"", b"\xc1", b"junk" * 100, deep_array(100_000), encode_frame(forged), b"\x92\xc4\x01x\xc4\x01y"]
    return [http.post("/p2p", content=body) for body in bodies]


def lone_surrogates(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    text = json.dumps(as_json(hostile.tx(), payload={"sku": "X"})).replace('"X"', '"\\ud800"')
    return [
        http.post("/v1/tx", content=text.encode(), headers=JSON),
        http.post("/v1/txs", content=f"[{text}]".encode(), headers=JSON),
        http.get("/v1/orders/%ED%A0%80"),
    ]


def out_of_range_heights(http: httpx.Client, hostile: Hostile) -> list[httpx.Response]:
    return [
        http.get(f"/v1/blocks/{2**70}"),
        http.get("/v1/blocks/-1"),
        http.get("/p2p/blocks", params={"from": 0, "to": 2**64}),
        http.get("/p2p/blocks", params={"from": 2**63, "to": 2**63 + 1}),
        http.get(f"/p2p/snapshot/{2**64}"),
    ]


ATTACKS: list[Attack] = [
    poison_nested_values,
    oversized_bodies,
    replayed_and_expired_txs,
    junk_p2p_frames,
    lone_surrogates,
    out_of_range_heights,
    bad_signatures,
]
"""Bad signatures last: they spend the address's budget of failed checks, after which txs from it are refused
unchecked for a moment."""


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet.create(tmp_path_factory.mktemp("hostile") / "net", 4)
    net.start_all()
    net.wait_until_up()
    yield net
    net.stop_all()


def is_refused(response: httpx.Response) -> bool:
    """A 4xx; or a batch answer (202) refusing every tx; or, for a `/p2p` frame, any answer below 500 (the inbox
    answers a frame before it opens it, and counts what it drops)."""
    path = response.request.url.path
    if response.status_code == 202 and path == "/v1/txs":
        return not any(verdict["accepted"] for verdict in response.json())
    if path == "/p2p":
        return response.status_code < 500
    return 400 <= response.status_code < 500


def attack_every_node(devnet: Devnet, hostile: Hostile) -> None:
    for node in devnet.nodes:
        with httpx.Client(base_url=node.url, timeout=30) as http:
            for attack in ATTACKS:
                for response in attack(http, hostile):
                    assert is_refused(response), (attack.__name__, response.status_code, response.text[:300])
        assert devnet.is_running(node), f"node {node.index} stopped"


def restart_from_data_and_verify(devnet: Devnet) -> None:
    devnet.stop_all()
    for node in devnet.nodes:
        assert omsnode(["verify-chain", "--home", str(node.home), "--json"]) == 0, f"node {node.index}"
    devnet.start_all()
    devnet.wait_until_up()


def test_no_hostile_input_stops_a_node_or_the_network(devnet: Devnet) -> None:
    hostile = Hostile(devnet)
    attack_every_node(devnet, hostile)
    for node in devnet.nodes:
        client = devnet.client(node.index)
        assert client.wait_tx(client.submit(tx_to_json(hostile.tx())), timeout=60)["status"] == "committed"
        client.close()
    height = hostile.client.status()["height"]
    wait_converged(devnet, height)
    restart_from_data_and_verify(devnet)
    hostile.client = devnet.client(1)
    after = hostile.commit()
    assert hostile.client.wait_tx(after.id.hex())["height"] > height
    wait_converged(devnet, hostile.client.status()["height"])
