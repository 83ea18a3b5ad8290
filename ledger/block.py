"""Blocks, receipts and commit certificates.

A block header commits to everything: the previous block's hash, the Merkle
root of its txs (each leaf is a tx's id and signature, so the root binds every
signed field and every signature), the state commitment *after* its txs, and
the Merkle root of their receipts. The block hash is the hash of the header
alone, and through these roots it is the hash of all the block contains. A committed
block is stored with the certificate of 2f+1 validator signatures over
`commit_sign_bytes`, so anyone holding only the genesis file can check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ledger.encoding import encode, encode_spliced, hash_value, sha256, verify_shape
from ledger.errors import InvalidBlock, InvalidCertificate, InvalidTransaction
from ledger.genesis import ConsensusParams, Genesis
from ledger.keys import is_valid_signature
from ledger.membership import ValidatorSet, get_genesis_membership
from ledger.merkle import compute_root
from ledger.tx import MAX_TX_BYTES, Tx, encode_tx, tx_from_wire


@dataclass(frozen=True)
class BlockHeader:
    """What a block hash commits to."""

    chain_id: str
    height: int
    """1 for the first block after genesis."""
    prev_hash: bytes
    timestamp_ms: int
    """Set by the proposer; the only clock contracts ever see."""
    view: int
    """Consensus view in which the block was proposed."""
    proposer: str
    """Validator id of the proposer."""
    tx_root: bytes
    state_root: bytes
    """State commitment after this block's txs."""
    receipts_root: bytes
    validators_hash: bytes = b""
    """Empty, except on the last block before a new validator set takes over: the hash of that set
    (`ledger.membership.ValidatorSet.hash`), so that the chain of set changes is certified by the sets
    themselves. Left out of the wire form when empty."""

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "chain_id": self.chain_id,
            "height": self.height,
            "prev_hash": self.prev_hash,
            "proposer": self.proposer,
            "receipts_root": self.receipts_root,
            "state_root": self.state_root,
            "timestamp_ms": self.timestamp_ms,
            "tx_root": self.tx_root,
            "view": self.view,
        }
        if self.validators_hash:
            wire["validators_hash"] = self.validators_hash
        return wire

    @classmethod
    def from_wire(cls, wire: Any) -> BlockHeader:
        if type(wire) is dict and "validators_hash" in wire:
            fields = verify_shape(wire, _HEADER_FIELDS | {"validators_hash": bytes}, InvalidBlock, "block header")
            if len(fields["validators_hash"]) != 32:
                raise InvalidBlock("a header's validators hash is 32 bytes when present")
            return cls(**fields)
        return cls(**verify_shape(wire, _HEADER_FIELDS, InvalidBlock, "block header"))

    def hash(self) -> bytes:
        """The header's hash, computed once (the header is immutable; the commit path asks for it often)."""
        return self._hash

    @cached_property
    def _hash(self) -> bytes:
        return hash_value(self.to_wire())


_HEADER_FIELDS = {
    "chain_id": str,
    "height": int,
    "prev_hash": bytes,
    "timestamp_ms": int,
    "view": int,
    "proposer": str,
    "tx_root": bytes,
    "state_root": bytes,
    "receipts_root": bytes,
}


@dataclass(frozen=True)
class Block:
    """A header and the txs it orders."""

    header: BlockHeader
    txs: tuple[Tx, ...]

    @property
    def height(self) -> int:
        return self.header.height

    def hash(self) -> bytes:
        return self.header.hash()

    def to_wire(self) -> dict[str, Any]:
        return {"header": self.header.to_wire(), "txs": [tx.to_wire() for tx in self.txs]}

    @classmethod
    def from_wire(cls, wire: Any) -> Block:
        """The block of a decoded map; raises `InvalidBlock` for any malformed part, its txs included."""
        verify_shape(wire, _BLOCK_FIELDS, InvalidBlock, "block")
        try:
            txs = tuple(tx_from_wire(t) for t in wire["txs"])
        except InvalidTransaction as exc:
            raise InvalidBlock(f"block holds a malformed tx: {exc}") from exc
        return cls(BlockHeader.from_wire(wire["header"]), txs)


_BLOCK_FIELDS = {"header": dict, "txs": list}


def encode_block(block: Block) -> bytes:
    """`encode(block.to_wire())`, with each tx's encoding (`encode_tx`) spliced in rather than its payload encoded
    again; a tx nests at most `MAX_TX_DEPTH` deep, and two levels down in a block that is well within bounds."""
    return encode_spliced({"header": block.header.to_wire()}, {"txs": [encode_tx(tx) for tx in block.txs]})


def compute_tx_root(txs: Sequence[Tx]) -> bytes:
    """Merkle root over each tx's id followed by its signature: a block whose txs carry other signatures
    than the ones certified has another root, and so another hash."""
    return compute_root([tx.id + tx.signature for tx in txs])


def check_block_place(block: Block, chain_id: str, height: int, prev_hash: bytes) -> None:
    """Raise `InvalidBlock` unless `block` is block `height` of `chain_id`, links to `prev_hash`, and its
    tx root matches its txs: what every receiver checks before it executes or trusts a block."""
    header = block.header
    if header.chain_id != chain_id:
        raise InvalidBlock(f"block {header.height} is for chain {header.chain_id!r}")
    if header.height != height:
        raise InvalidBlock(f"expected block {height}, got block {header.height}")
    if header.prev_hash != prev_hash:
        raise InvalidBlock(f"block {height} does not link to the block before it")
    verify_block_body(block)


def verify_block_body(block: Block) -> None:
    """Raise `InvalidBlock` unless the block's txs are the ones its header's tx root commits to.

    A header hash names a block only once this holds: a body swapped under a genuine header is
    not that block, and must never be cached, voted on or stored as if it were.
    """
    if block.header.tx_root != compute_tx_root(block.txs):
        raise InvalidBlock(f"block {block.header.height}: tx root does not match its txs")


def compute_block_tx_bytes(block: Block) -> int:
    """Bytes of the signed txs a block carries: what `ConsensusParams.max_block_bytes` bounds."""
    return sum(len(tx.signing_bytes()) + len(tx.signature) for tx in block.txs)


WORK_BASE_BYTES = 256
"""What a tx's envelope (signer, kind, nonce, signature) and a small payload weigh: a tx up to this size plus one
`WORK_UNIT_BYTES` is one unit of work."""

WORK_UNIT_BYTES = 256
"""A tx weighs its size past `WORK_BASE_BYTES` in these (at least 1) against `ConsensusParams.max_block_txs`: a
single order is one unit, an `order.import` of a hundred orders about ninety (each order in it is about 240 bytes),
so a block of bulk txs executes in about the time of `max_block_txs` single orders and stays well inside the view
timer. Proposals are filled by this measure (`node.mempool.Mempool.batch`)."""


def compute_tx_work(size: int) -> int:
    """The work of a signed tx of `size` bytes, in units of `max_block_txs`."""
    return max(1, -(-(size - WORK_BASE_BYTES) // WORK_UNIT_BYTES))


def compute_block_work(block: Block) -> int:
    """The work of a block's txs, by the measure proposals are filled by (`compute_tx_work`)."""
    return sum(compute_tx_work(len(tx.signing_bytes()) + len(tx.signature)) for tx in block.txs)


def has_room(block: Block, params: ConsensusParams, largest_tx_bytes: int = MAX_TX_BYTES) -> bool:
    """Could the block have held one more tx of the largest size (`largest_tx_bytes`), by the work measure
    proposals are filled by and by bytes? A proposal takes its primary's oldest txs while the next one fits, so a
    block with that much room was cut by the primary's pool running dry; a block without it may have been cut by
    the primary's backlog: it says the primary was busy, not that it left a tx out."""
    sizes = [len(tx.signing_bytes()) + len(tx.signature) for tx in block.txs]
    work = sum(compute_tx_work(size) for size in sizes) + compute_tx_work(largest_tx_bytes)
    return work <= params.max_block_txs and sum(sizes) + largest_tx_bytes <= params.max_block_bytes


@dataclass(frozen=True)
class Receipt:
    """What executing one tx did: accepted, or rejected with a reason."""

    tx_id: bytes
    ok: bool
    code: str
    """`ok`, or a machine-readable reason such as `insufficient_stock`."""
    message: str
    """Human-readable explanation."""
    result: dict[str, Any]
    """Kind-specific output (e.g. the order number assigned)."""

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "ok": self.ok, "result": self.result, "tx_id": self.tx_id}

    @classmethod
    def from_wire(cls, wire: Any) -> Receipt:
        verify_shape(wire, _RECEIPT_FIELDS, InvalidBlock, "receipt")
        return cls(wire["tx_id"], wire["ok"], wire["code"], wire["message"], wire["result"])


_RECEIPT_FIELDS = {"code": str, "message": str, "ok": bool, "result": dict, "tx_id": bytes}


def compute_receipts_root(receipts: Sequence[Receipt]) -> bytes:
    return compute_root([encode(r.to_wire()) for r in receipts])


def commit_sign_bytes(chain_id: str, height: int, view: int, block_hash: bytes) -> bytes:
    """The bytes a validator signs when it votes to commit a block."""
    return encode({"block_hash": block_hash, "chain_id": chain_id, "height": height, "type": "commit", "view": view})


@dataclass(frozen=True)
class CommitCertificate:
    """2f+1 validator signatures committing one block."""

    height: int
    view: int
    block_hash: bytes
    signatures: tuple[tuple[str, bytes], ...]
    """(validator id, signature) pairs, sorted by validator id."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "block_hash": self.block_hash,
            "height": self.height,
            "signatures": [[v, s] for v, s in self.signatures],
            "view": self.view,
        }

    @classmethod
    def from_wire(cls, wire: Any) -> CommitCertificate:
        """The certificate of a decoded map; raises `InvalidCertificate` for any malformed part."""
        verify_shape(wire, _CERTIFICATE_FIELDS, InvalidCertificate, "certificate")
        signatures = []
        for pair in wire["signatures"]:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str or type(pair[1]) is not bytes:
                raise InvalidCertificate("a certificate signature is a [validator id, signature bytes] pair")
            signatures.append((pair[0], pair[1]))
        return cls(wire["height"], wire["view"], wire["block_hash"], tuple(signatures))


_CERTIFICATE_FIELDS = {"block_hash": bytes, "height": int, "signatures": list, "view": int}


def verify_certificate(
    cert: CommitCertificate,
    genesis: Genesis,
    block_hash: bytes,
    height: int,
    validators: ValidatorSet | None = None,
) -> None:
    """Raise `InvalidCertificate` unless `cert` holds a quorum of good signatures for this block from
    `validators`, the set that certifies `height` (the genesis set when None)."""
    if cert.block_hash != block_hash or cert.height != height:
        raise InvalidCertificate(f"certificate at height {height} is for another block")
    if validators is None:
        validators = get_genesis_membership(genesis).validator_set(height)
    message = commit_sign_bytes(genesis.chain_id, height, cert.view, block_hash)
    keys = validators.keys
    signers: set[str] = set()
    for validator, signature in cert.signatures:
        key = keys.get(validator)
        if key is None:
            raise InvalidCertificate(f"certificate at height {height} signed by unknown validator {validator!r}")
        if validator in signers:
            raise InvalidCertificate(f"certificate at height {height} counts validator {validator!r} twice")
        if not is_valid_signature(key, message, signature):
            raise InvalidCertificate(f"certificate at height {height}: bad signature from {validator!r}")
        signers.add(validator)
    if len(signers) < validators.quorum:
        raise InvalidCertificate(
            f"certificate at height {height} has {len(signers)} signatures, quorum is {validators.quorum}"
        )


def genesis_hash(genesis: Genesis) -> bytes:
    """The hash that block 1 links back to."""
    return sha256(b"genesis:" + encode(genesis.to_wire()))


__all__ = [
    "Block",
    "BlockHeader",
    "CommitCertificate",
    "Receipt",
    "check_block_place",
    "commit_sign_bytes",
    "compute_block_tx_bytes",
    "compute_block_work",
    "compute_receipts_root",
    "compute_tx_root",
    "compute_tx_work",
    "encode_block",
    "encode_tx",
    "genesis_hash",
    "has_room",
    "verify_block_body",
    "verify_certificate",
]
