"""Builders for keys, genesis files, txs and blocks used across the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.encoding import encode, sha256
from ledger.genesis import ConsensusParams, Genesis, Identity
from ledger.keys import PrivateKey
from ledger.personal import EncryptionKey, seeded_random
from ledger.tx import MAX_TX_WINDOW, Tx, make_tx
from omsclient.signing import seal_orders

CHAIN_ID = "oms-test"


@dataclass
class Network:
    """A genesis with deterministic keys for every validator and client."""

    genesis: Genesis
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    nonce: int = 0
    valid_until: int = MAX_TX_WINDOW
    """The `valid_until` of the txs `tx` signs: by default, any block from 1 to `MAX_TX_WINDOW` may take them."""

    def tx(self, signer: str, kind: str, payload: dict[str, Any]) -> Tx:
        """`kind` with `payload` signed as `signer`; an order's clear ship-to and notes sealed first, as a client
        does, to the signer's organisation (from a seed of the tx, so a test signs the same bytes every run)."""
        self.nonce += 1
        identity = self.genesis.identity(signer)
        if identity is not None:
            org = identity.org
            key = org_encryption_key(self.genesis.chain_id, org).public
            seed = sha256(encode([signer, self.nonce, payload]))
            payload = seal_orders(kind, payload, org, key, seeded_random(seed))
        return make_tx(
            self.genesis.chain_id, kind, signer, self.nonce, payload, self.keys[signer], valid_until=self.valid_until
        )


def org_encryption_key(chain_id: str, org: str) -> EncryptionKey:
    """The encryption key of a test network's organisation (`make_network` names its public key in genesis)."""
    return EncryptionKey.from_seed_text(f"{chain_id}/{org}/encryption")


def make_network(
    validators: int = 1,
    clients: dict[str, list[str]] | None = None,
    chain_id: str = CHAIN_ID,
    consensus: ConsensusParams | None = None,
) -> Network:
    """Genesis with `validators` validators (`node-0`..) and clients given as id -> roles.

    By default there is one client of each role: `channel-1`, `store-1`, `operator-1`, `auditor-1` and the
    payment provider `psp-1`.
    """
    if clients is None:
        clients = {
            "channel-1": ["channel"],
            "store-1": ["store"],
            "operator-1": ["operator"],
            "auditor-1": ["auditor"],
            "psp-1": ["payment_provider"],
        }
    keys: dict[str, PrivateKey] = {}
    orgs = [
        {
            "id": f"org-{i}",
            "name": f"Organisation {i}",
            "encryption_key": org_encryption_key(chain_id, f"org-{i}").public.hex(),
        }
        for i in range(validators)
    ]
    vals = []
    for i in range(validators):
        vid = f"node-{i}"
        keys[vid] = PrivateKey.from_seed_text(f"{chain_id}/{vid}")
        vals.append(
            Identity(vid, f"org-{i}", keys[vid].public, frozenset({"validator"}), f"http://127.0.0.1:{27000 + i}")
        )
    cls = []
    for cid, roles in clients.items():
        keys[cid] = PrivateKey.from_seed_text(f"{chain_id}/{cid}")
        cls.append(Identity(cid, "org-0", keys[cid].public, frozenset(roles)))
    genesis = Genesis(chain_id, 1_700_000_000_000, tuple(orgs), tuple(vals), tuple(cls), consensus or ConsensusParams())
    return Network(genesis, keys)
