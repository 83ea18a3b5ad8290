"""Signing txs as an identity of the network: the JSON form that `POST /v1/tx` takes, and its id.

A tx is seven fields (`chain_id`, `kind`, `signer`, `nonce`, `payload`,
`valid_until`, `signature`). The signature is Ed25519 over the canonical
encoding of the other six and the domain tag `oms-ledger/tx`; the tx id is
the sha256 of those same bytes (docs/spec/signing.md says it byte by byte).
`Signer` signs for one identity with its private key; `Keyring` signs for
any identity whose key file is in one folder, with a fresh nonce and the
validity window a node suggests, as the devnet's tools and tests do.

A signed tx is its own idempotency key: sent twice, it has the same id and
is committed at most once, so a client may send it again whenever it does
not know whether the first send arrived. An action signed again (after a
restart, with a new `valid_until`) is a new tx unless it names a business
key: `sign(..., idempotency_key=K)` makes the nonce the keyed nonce of K
(`ledger.idempotency`), and the ledger runs one tx per signer and key; a
repeat is committed as `duplicate_request` naming the first tx.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ledger.encoding import sha256
from ledger.genesis import Genesis
from ledger.idempotency import derive_keyed_nonce
from ledger.keys import PrivateKey
from ledger.personal import Random, seal_order_fields
from ledger.tx import Tx, make_tx

_nonces = itertools.count(time.time_ns())
"""Fresh nonces for txs signed without one: nanoseconds at import, then one more each."""


def fresh_nonce() -> int:
    """A nonce no earlier call in this process gave (unique per signer as long as clocks go forward)."""
    return next(_nonces)


def tx_to_json(tx: Tx) -> dict[str, Any]:
    """The JSON form of a signed tx: its seven fields, the signature in hex."""
    wire = tx.to_wire()
    wire["signature"] = tx.signature.hex()
    return wire


def tx_to_wire(tx: Mapping[str, Any]) -> dict[str, Any]:
    """The msgpack form of a tx given in JSON form (the signature as bytes), as `POST /v1/txs` takes it."""
    wire = dict(tx)
    wire["signature"] = bytes.fromhex(tx["signature"])
    return wire


def tx_id(tx: Mapping[str, Any]) -> str:
    """The id (hex) of a tx in JSON form: sha256 of its signing bytes, which do not cover the signature."""
    unsigned = Tx(tx["chain_id"], tx["kind"], tx["signer"], tx["nonce"], tx["payload"], tx["valid_until"])
    return sha256(unsigned.signing_bytes()).hex()


class Signer:
    """Signs txs as one identity of the network's genesis (a channel, a store, an operator)."""

    def __init__(self, identity: str, private_key: PrivateKey | bytes) -> None:
        """`private_key`: the identity's Ed25519 key, or its 32-byte seed."""
        self.identity = identity
        """The signer id the txs carry, as genesis lists it."""
        self._key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(private_key)

    @classmethod
    def from_key_file(cls, path: str | Path, identity: str) -> Signer:
        """A signer whose key is a PKCS#8 PEM file (as `omsnode init` and `token create --key` write them)."""
        return cls(identity, PrivateKey.load(Path(path)))

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key genesis must list for `identity`."""
        return self._key.public

    def sign(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        chain_id: str,
        valid_until: int,
        nonce: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """The JSON tx for `POST /v1/tx`: `kind` with `payload`, signed for `chain_id`, committable up to height
        `valid_until` (`tx_valid_until` of `GET /v1/status` is a sensible value).

        `idempotency_key`: a business key (an order's reference, a return's document) that makes this action
        one however often it is signed (the module says how); or `nonce`, chosen by the caller; with neither,
        a fresh nonce. Raises `ledger.errors.EncodingError` for a payload that is not ledger data (a float, a
        non-string key, ...)."""
        tx = self.sign_tx(
            kind, payload, chain_id=chain_id, valid_until=valid_until, nonce=nonce, idempotency_key=idempotency_key
        )
        return tx_to_json(tx)

    def sign_tx(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        chain_id: str,
        valid_until: int,
        nonce: int | None = None,
        idempotency_key: str | None = None,
    ) -> Tx:
        """`sign`, as the ledger's own `Tx` (with its `id`), for code that works with ledger types."""
        if nonce is not None and idempotency_key is not None:
            raise ValueError("give a nonce or an idempotency key, not both: the key makes the nonce")
        if idempotency_key is not None:
            nonce = derive_keyed_nonce(self.identity, idempotency_key)
        elif nonce is None:
            nonce = fresh_nonce()
        return make_tx(chain_id, kind, self.identity, nonce, payload, self._key, valid_until=valid_until)


def seal_orders(
    kind: str, payload: dict[str, Any], org: str, key: bytes | None, random: Random = os.urandom
) -> dict[str, Any]:
    """The payload of `kind` as it may be signed: each order's (`order.create`, each order of `order.import`)
    clear ship-to and notes sealed to `org`, whose encryption key is `key` (`ledger.personal.seal_order_fields`)."""
    if kind == "order.create":
        return seal_order_fields(payload, org, key, random)
    if kind == "order.import" and isinstance(payload.get("orders"), list):
        orders = [seal_order_fields(o, org, key, random) if isinstance(o, dict) else o for o in payload["orders"]]
        return {**payload, "orders": orders}
    return payload


def get_sealing_keys(genesis: Genesis) -> dict[str, tuple[str, bytes | None]]:
    """Client identity -> (its organisation, that organisation's encryption key or None), as genesis names them."""
    keys = {o["id"]: o.get("encryption_key") for o in genesis.organisations}
    return {
        client.id: (client.org, None if keys.get(client.org) is None else bytes.fromhex(keys[client.org] or ""))
        for client in genesis.clients
    }


class Keyring:
    """Signs as any identity whose key file (`<identity>.key`) is in one folder, with a fresh nonce and the window
    `valid_until()` answers (typically `Client.valid_until`). An order (`order.create`, each order of an
    `order.import`) that holds `ship_to` or `notes` in clear has them sealed to the signer's organisation
    (`ledger.personal`) before it is signed, with the keys `sealing` names (`get_sealing_keys`)."""

    def __init__(
        self,
        keys_dir: Path,
        chain_id: str,
        valid_until: Callable[[], int],
        sealing: Mapping[str, tuple[str, bytes | None]] | None = None,
    ) -> None:
        self.keys_dir = keys_dir
        self.chain_id = chain_id
        self.valid_until = valid_until
        self.sealing = dict(sealing or {})
        """Client identity -> (its organisation, the organisation's encryption key)."""
        self._signers: dict[str, Signer] = {}

    def seal(self, identity: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`payload` with the clear personal data of its order(s) sealed to `identity`'s organisation."""
        org, key = self.sealing.get(identity, (identity, None))
        return seal_orders(kind, payload, org, key)

    def signer(self, identity: str) -> Signer:
        """The signer of `identity`, its key read once; `FileNotFoundError` if the folder has none."""
        if identity not in self._signers:
            path = self.keys_dir / f"{identity}.key"
            if not path.exists():
                raise FileNotFoundError(f"no key for {identity!r} ({path} does not exist)")
            self._signers[identity] = Signer.from_key_file(path, identity)
        return self._signers[identity]

    def sign(self, identity: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The JSON tx of `kind` with `payload`, signed as `identity`."""
        return tx_to_json(self.sign_tx(identity, kind, payload))

    def sign_tx(self, identity: str, kind: str, payload: dict[str, Any]) -> Tx:
        """`sign`, as the ledger's own `Tx`."""
        sealed = self.seal(identity, kind, payload)
        return self.signer(identity).sign_tx(kind, sealed, chain_id=self.chain_id, valid_until=self.valid_until())
