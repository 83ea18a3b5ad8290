"""Transactions: what a member of the network signs to change the ledger.

A tx names its chain, its kind (`stock.receive`, `order.create`, ...), its
signer (a client or validator id from genesis), a nonce that makes it unique,
a payload map, and the last height at which it may be committed
(`valid_until`). The signer signs the canonical encoding of those six fields
and the domain tag `TX_DOMAIN` (sorted first come the chain id and the tag),
so a tx signature can never pass for an envelope, a vote or a tx of another
chain. That same encoding, hashed, is the tx id, by which txs are
deduplicated and replays refused; the id does not depend on the signature
bytes, so a block's tx root covers each tx's id *and* signature
(`ledger.block.compute_tx_root`).

The validity window is what makes replay protection finite: a block at
height h takes a tx only if `h <= valid_until <= h + MAX_TX_WINDOW`, so the
ledger needs to remember a committed tx's id only until its `valid_until`
has passed (`ledger.replay`); after that the tx is refused as expired.

A tx's signed fields nest at most `MAX_TX_DEPTH` deep, well inside the
encoding's `MAX_DEPTH`: a tx travels inside blocks, consensus messages and
sync answers, and each of those must still decode as a whole.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ledger.encoding import decode, encode, sha256, verify_shape
from ledger.errors import EncodingError, InvalidTransaction
from ledger.keys import PrivateKey, verify

MAX_TX_BYTES = 64 * 1024
"""Largest encoded tx accepted anywhere."""

TX_DOMAIN = "oms-ledger/tx"
"""Tag inside a tx's signed bytes, so a tx signature can never pass for an envelope or a vote."""

MAX_TX_DEPTH = 16
"""Deepest nesting of a tx's signed fields (the payload map is level 2); its deepest carrier, a NEW-VIEW
holding a prepared PRE-PREPARE, puts the tx 8 levels down, and 8 + 16 stays within `MAX_DEPTH`."""

MAX_TX_WINDOW = 10_000
"""Most blocks by which a tx's `valid_until` may lie beyond the height of the block that takes it: it bounds
how long the world state keeps each committed tx's id."""

DEFAULT_TX_WINDOW = 1_000
"""The window a node suggests to clients (`tx_valid_until` in its status is its head height plus this)."""


@dataclass(frozen=True)
class Tx:
    """A signed transaction."""

    chain_id: str
    """The chain this tx is meant for; a tx for another chain is refused."""
    kind: str
    """Which contract rule processes it, e.g. `order.create`."""
    signer: str
    """Identity id from genesis that signed it."""
    nonce: int
    """Any integer chosen by the signer so that equal payloads differ."""
    payload: dict[str, Any]
    """Kind-specific fields."""
    valid_until: int
    """Last height of a block that may take this tx; after it the tx is expired."""
    signature: bytes = b""
    """Ed25519 signature over `signing_bytes`."""
    id: bytes = field(default=b"", compare=False)
    """sha256 of `signing_bytes`; filled in by construction helpers."""
    body: bytes = field(default=b"", compare=False, repr=False)
    """`signing_bytes`, kept by the construction helpers, which derive it, the id and the fields together."""

    def signing_bytes(self) -> bytes:
        if self.body:
            return self.body
        return encode(
            {
                "chain_id": self.chain_id,
                "domain": TX_DOMAIN,
                "kind": self.kind,
                "nonce": self.nonce,
                "payload": self.payload,
                "signer": self.signer,
                "valid_until": self.valid_until,
            },
            MAX_TX_DEPTH,
        )

    def to_wire(self) -> dict[str, Any]:
        """The tx as a plain map (what is encoded into blocks and sent over the network)."""
        return {
            "chain_id": self.chain_id,
            "kind": self.kind,
            "nonce": self.nonce,
            "payload": self.payload,
            "signature": self.signature,
            "signer": self.signer,
            "valid_until": self.valid_until,
        }

    def verify_signature(self, public_key: bytes) -> None:
        verify(public_key, self.signing_bytes(), self.signature)


def make_tx(
    chain_id: str, kind: str, signer: str, nonce: int, payload: dict[str, Any], key: PrivateKey, *, valid_until: int
) -> Tx:
    """Build and sign a tx."""
    unsigned = Tx(chain_id, kind, signer, nonce, payload, valid_until)
    body = unsigned.signing_bytes()
    return Tx(chain_id, kind, signer, nonce, payload, valid_until, key.sign(body), sha256(body), body)


_FIELDS = {
    "chain_id": str,
    "kind": str,
    "nonce": int,
    "payload": dict,
    "signature": bytes,
    "signer": str,
    "valid_until": int,
}


def tx_from_wire(wire: Any) -> Tx:
    """Check the shape of a decoded tx map and build the `Tx` (with its id)."""
    verify_shape(wire, _FIELDS, InvalidTransaction, "tx")
    tx = Tx(
        wire["chain_id"],
        wire["kind"],
        wire["signer"],
        wire["nonce"],
        wire["payload"],
        wire["valid_until"],
        wire["signature"],
    )
    try:
        body = tx.signing_bytes()
    except EncodingError as exc:
        raise InvalidTransaction(str(exc)) from exc
    if len(body) + len(tx.signature) > MAX_TX_BYTES:
        raise InvalidTransaction(f"tx is larger than {MAX_TX_BYTES} bytes")
    object.__setattr__(tx, "id", sha256(body))
    object.__setattr__(tx, "body", body)
    return tx


_DOMAIN_ENTRY = encode({"domain": TX_DOMAIN})[1:]
"""The entry of a tx's signed map that its wire map lacks (after the one-byte map header)."""

_SIGNATURE_KEY = encode("signature")


@functools.lru_cache(maxsize=16)
def _encode_signed_head(chain_id: str) -> bytes:
    """How the signed bytes of every tx of `chain_id` begin: a map of seven entries, the chain id, the domain
    (a node sees one chain, so this is encoded once)."""
    return b"\x87" + encode({"chain_id": chain_id})[1:] + _DOMAIN_ENTRY


def encode_tx(tx: Tx) -> bytes:
    """`encode(tx.to_wire())`, made from the tx's signed bytes when it keeps them, without encoding its payload
    again.

    The wire map has the seven keys of the signed map but for `domain`, which comes right after `chain_id`,
    and `signature`, which sorts between `payload` and `signer`, the last two keys of both: so the signed
    bytes without their head (up to the domain entry) and their tail (signer and window) are the middle of
    the wire bytes. A tx whose signed bytes do not begin and end with its own chain id, signer and window is
    encoded in full, within the same `MAX_TX_DEPTH` as its signed map, so that a block splicing it in
    (`ledger.block.encode_block`) still decodes.
    """
    body = tx.body
    if body:
        head = _encode_signed_head(tx.chain_id)
        tail = encode({"signer": tx.signer, "valid_until": tx.valid_until})[1:]
        if len(body) > len(head) + len(tail) and body.startswith(head) and body.endswith(tail):
            middle = body[len(head) : len(body) - len(tail)]
            return head[: -len(_DOMAIN_ENTRY)] + middle + _SIGNATURE_KEY + encode(tx.signature) + tail
    return encode(tx.to_wire(), MAX_TX_DEPTH)


def decode_tx(data: bytes) -> Tx:
    """The tx encoded in `data`; raises `InvalidTransaction` for anything else."""
    if len(data) > MAX_TX_BYTES + 128:
        raise InvalidTransaction(f"tx is larger than {MAX_TX_BYTES} bytes")
    try:
        wire = decode(data)
    except EncodingError as exc:
        raise InvalidTransaction(f"tx is not ledger data: {exc}") from exc
    return tx_from_wire(wire)
