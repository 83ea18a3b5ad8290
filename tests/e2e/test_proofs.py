"""Proofs taken from a node of a 4-node devnet hold with only the genesis file, after every node is stopped;
so does a state proof of a stock position; a bit flipped anywhere in one makes it fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from devnet.network import Devnet
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.proof import decode_proof, verify_tx_proof
from ledger.state_proof import decode_state_proof, verify_state_proof
from omsclient import Keyring, tx_id
from tests.e2e.conftest import omsnode
from tests.helpers.tamper import flip_bit

pytestmark = [pytest.mark.e2e]


def fetch(devnet: Devnet, index: int, path: str) -> bytes:
    answer = httpx.get(
        f"{devnet.node(index).url}{path}", headers={"authorization": f"Bearer {devnet.token}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def test_a_proof_from_one_node_verifies_offline_and_fails_once_tampered(devnet: Devnet, tmp_path: Path) -> None:
    client = devnet.client(1, timeout=30)
    keyring = Keyring(devnet.clients_dir, devnet.genesis.chain_id, client.valid_until)
    sku = keyring.sign(
        "operator-1", "sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}
    )
    location = keyring.sign(
        "operator-1",
        "location.upsert",
        {"location": "LIS-1", "type": "store", "org": "org-0", "region": "PT", "lat": 38_722_000, "lon": -9_139_000},
    )
    receive = keyring.sign(
        "store-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 5, "lot": "L1"}]}
    )
    statuses = [client.wait_tx(client.submit(tx), timeout=120) for tx in (sku, location, receive)]
    client.close()
    assert [status["status"] for status in statuses] == ["committed"] * 3
    tx_proof = fetch(devnet, 2, f"/v1/proofs/tx/{tx_id(sku)}")
    movement_proof = fetch(devnet, 3, "/v1/proofs/movement/LIS-1/TEE-M/1")
    stock_proof = fetch(devnet, 1, "/v1/proofs/state/stock/LIS-1/TEE-M")
    node = ("--node", devnet.node(0).url, "--token", devnet.token)
    traced = json.loads(omsnode("trace", "L1", *node, "--proof-dir", str(tmp_path / "lot"), "--json").stdout)
    assert [(step["kind"], step["tx_id"]) for step in traced["items"]] == [("receipt", tx_id(receive))]
    devnet.stop_all()

    genesis = tmp_path / "genesis.json"
    shutil.copy(devnet.node(0).home / "genesis.json", genesis)
    (tmp_path / "tx.proof").write_bytes(tx_proof)
    (tmp_path / "movement.proof").write_bytes(movement_proof)

    said = json.loads(omsnode("verify-proof", str(tmp_path / "tx.proof"), "--genesis", str(genesis), "--json").stdout)
    assert said["ok"] and said["tx_id"] == tx_id(sku) and said["height"] == statuses[0]["height"]
    assert said["receipt"]["ok"] and len(said["signers"]) >= devnet.genesis.quorum
    for proof in (tmp_path / "movement.proof", *(tmp_path / "lot").iterdir()):
        text = omsnode("verify-proof", str(proof), "--genesis", str(genesis)).stdout
        assert text.startswith(f"PROVEN: tx {tx_id(receive)} (stock.receive, signed by store-1)")

    (tmp_path / "stock.proof").write_bytes(stock_proof)
    said = json.loads(
        omsnode("verify-proof", str(tmp_path / "stock.proof"), "--genesis", str(genesis), "--json").stdout
    )
    assert said["ok"] and said["key"] == "stock/LIS-1/TEE-M" and said["value"]["on_hand"] == 5

    (tmp_path / "tampered.proof").write_bytes(flip_bit(tx_proof, len(tx_proof) // 2))
    refused = omsnode("verify-proof", str(tmp_path / "tampered.proof"), "--genesis", str(genesis), check=False)
    assert refused.returncode == 1 and "does NOT hold" in refused.stderr
    offline = Genesis.load(genesis)
    for position in range(0, len(tx_proof), 3):
        with pytest.raises(LedgerError):
            verify_tx_proof(decode_proof(flip_bit(tx_proof, position)), offline)
    for position in range(0, len(stock_proof), 3):
        with pytest.raises(LedgerError):
            verify_state_proof(decode_state_proof(flip_bit(stock_proof, position)), offline)

    other = json.loads(genesis.read_text())
    other["genesis_time_ms"] += 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    refused = omsnode(
        "verify-proof", str(tmp_path / "tx.proof"), "--genesis", str(tmp_path / "other.json"), check=False
    )
    assert refused.returncode == 1 and "another genesis" in refused.stderr
