"""Offline proofs that a tx was committed, with its receipt, by a quorum of validators.

A tx proof holds everything an auditor needs besides the genesis file: the
certified block header, its commit certificate, the tx and its receipt, the
Merkle path of each up to the header's tx and receipts roots, the hash of the
genesis it belongs to, and the validator-set changes from genesis up to the
block (empty while the set never changed; each the new set and the certified
header before it, `ledger.epochs.EpochLink`). Checking it needs no node and no
network: the changes are walked from the genesis set, each certified by the
set before it; the block's certificate is checked against the set they reach,
the paths against the certified roots.

A proof travels as one canonical JSON text (`encode_proof`): sorted keys, no
spaces, lowercase hex for bytes, the ledger's own objects (header,
certificate, tx, receipt, and each change's header, certificate and set) as
the hex of their canonical encoding. The
verifier parses the text and requires it to be exactly the canonical text of
what it parsed, so every byte of the file is bound: a changed byte either
fails to parse, or is not canonical, or changes a value that a signature, a
hash or a root check covers. docs/adr/0009-offline-tx-proofs.md records why, and
docs/adr/0012-proofs-across-validator-set-changes.md how changes are carried.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ledger.block import BlockHeader, CommitCertificate, Receipt, genesis_hash, verify_certificate
from ledger.encoding import decode, encode
from ledger.epochs import MAX_EPOCH_LINKS, EpochLink, validators_from_wire, verify_epoch_links
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.membership import ValidatorSet
from ledger.merkle import compute_proof, is_valid_proof
from ledger.tx import Tx, decode_tx, encode_tx

FORMAT = "oms-ledger/tx-proof/1"
"""What the `format` field of every tx proof of this shape says."""

MAX_PROOF_BYTES = 4 * 1024 * 1024
"""Largest proof text the verifier reads (a tx is at most `MAX_TX_BYTES`; paths are a few dozen hashes)."""

MAX_PATH_HASHES = 64
"""Most hashes in one Merkle path: a tree of 2**64 leaves."""


Parsed = TypeVar("Parsed")


class InvalidProof(LedgerError):
    """A proof that does not prove what it claims."""


@dataclass(frozen=True)
class MerklePath:
    """Where a leaf lies in a Merkle tree, and the sibling hashes that lead from it to the root."""

    index: int
    """Position of the leaf, from 0."""
    size: int
    """Leaves in the tree."""
    hashes: tuple[bytes, ...]
    """Sibling hashes from the leaf up (`ledger.merkle.compute_proof`)."""


@dataclass(frozen=True)
class TxProof:
    """Everything that shows one tx committed with its receipt, checkable with only the genesis file."""

    genesis_hash: bytes
    """`genesis_hash` of the chain's genesis: a proof of another chain fails at once."""
    header: BlockHeader
    certificate: CommitCertificate
    tx: Tx
    receipt: Receipt
    tx_path: MerklePath
    """The leaf `tx.id + tx.signature` under `header.tx_root`."""
    receipt_path: MerklePath
    """The leaf `encode(receipt.to_wire())` under `header.receipts_root`."""
    validator_set_changes: tuple[EpochLink, ...] = ()
    """Certified changes of the validator set from genesis up to the block, oldest first."""


@dataclass(frozen=True)
class Proven:
    """What a tx proof proves."""

    tx: Tx
    receipt: Receipt
    height: int
    block_hash: bytes
    timestamp_ms: int
    signers: tuple[str, ...]
    """Validators whose commit signatures the certificate holds."""
    organisations: tuple[str, ...]
    """Their organisations, sorted."""
    validator_set_changes: int
    """How many certified validator-set changes led from the genesis set to the set that certified the block."""


def compute_tx_proof(
    genesis: Genesis,
    header: BlockHeader,
    certificate: CommitCertificate,
    txs: Sequence[Tx],
    receipts: Sequence[Receipt],
    index: int,
    changes: Sequence[EpochLink] = (),
) -> TxProof:
    """The proof of tx `index` of a committed block, from the block's txs, receipts and certificate, and the
    validator-set changes from genesis up to the block."""
    tx_leaves = [tx.id + tx.signature for tx in txs]
    receipt_leaves = [encode(receipt.to_wire()) for receipt in receipts]
    return TxProof(
        genesis_hash=genesis_hash(genesis),
        header=header,
        certificate=certificate,
        tx=txs[index],
        receipt=receipts[index],
        tx_path=MerklePath(index, len(tx_leaves), tuple(compute_proof(tx_leaves, index))),
        receipt_path=MerklePath(index, len(receipt_leaves), tuple(compute_proof(receipt_leaves, index))),
        validator_set_changes=tuple(changes),
    )


def verify_tx_proof(proof: TxProof, genesis: Genesis) -> Proven:
    """Raise `InvalidProof` (or `InvalidBlock`) unless `proof` shows its tx and receipt committed on the
    chain of `genesis`; return what it proves."""
    header = proof.header
    validators = verify_certified_header(
        genesis, proof.genesis_hash, header, proof.certificate, proof.validator_set_changes
    )
    tx = proof.tx
    signer = genesis.identity(tx.signer) or next((v for v in validators.validators if v.id == tx.signer), None)
    if signer is None:
        raise InvalidProof(f"the tx is signed by {tx.signer!r}, not a member of this chain")
    tx.verify_signature(signer.public_key)
    if (proof.tx_path.index, proof.tx_path.size) != (proof.receipt_path.index, proof.receipt_path.size):
        raise InvalidProof("the receipt's place in its block is not the tx's place")
    if not _is_on_path(tx.id + tx.signature, proof.tx_path, header.tx_root):
        raise InvalidProof("the tx is not under the block's tx root")
    if proof.receipt.tx_id != tx.id:
        raise InvalidProof("the receipt is for another tx")
    if not _is_on_path(encode(proof.receipt.to_wire()), proof.receipt_path, header.receipts_root):
        raise InvalidProof("the receipt is not under the block's receipts root")
    signers, orgs = compute_signers(proof.certificate, validators)
    return Proven(
        tx=tx,
        receipt=proof.receipt,
        height=header.height,
        block_hash=header.hash(),
        timestamp_ms=header.timestamp_ms,
        signers=signers,
        organisations=orgs,
        validator_set_changes=len(proof.validator_set_changes),
    )


def verify_certified_header(
    genesis: Genesis,
    claimed_genesis_hash: bytes,
    header: BlockHeader,
    certificate: CommitCertificate,
    changes: Sequence[EpochLink],
) -> ValidatorSet:
    """Raise `InvalidProof` (or `InvalidBlock`) unless `header` is of the chain of `genesis` and certified by a
    quorum of the set in force at its height, reached from the genesis set through `changes`; that set."""
    if claimed_genesis_hash != genesis_hash(genesis):
        raise InvalidProof("the proof is for another genesis")
    if header.chain_id != genesis.chain_id:
        raise InvalidProof(f"the block is of chain {header.chain_id!r}, the genesis of {genesis.chain_id!r}")
    validators = verify_epoch_links(genesis, header.height, changes)
    verify_certificate(certificate, genesis, header.hash(), header.height, validators)
    return validators


def compute_signers(
    certificate: CommitCertificate, validators: ValidatorSet
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The validators whose signatures a checked certificate holds, and their organisations, sorted."""
    signers = tuple(validator for validator, _ in certificate.signatures)
    return signers, tuple(sorted({identity.org for identity in validators.validators if identity.id in signers}))


def _is_on_path(leaf: bytes, path: MerklePath, root: bytes) -> bool:
    return is_valid_proof(leaf, path.index, path.size, list(path.hashes), root)


def encode_canonical(wire: dict[str, Any]) -> bytes:
    """The canonical JSON text of a proof's fields: sorted keys, no spaces, ASCII, one final newline."""
    return (json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def decode_canonical(text: bytes, parse: Callable[[Any], Parsed], encode_parsed: Callable[[Parsed], bytes]) -> Parsed:
    """`parse` of a proof text, refused (`InvalidProof`) unless the text is exactly the canonical text
    (`encode_parsed`) of what it parsed."""
    if len(text) > MAX_PROOF_BYTES:
        raise InvalidProof(f"a proof is at most {MAX_PROOF_BYTES} bytes")
    try:
        wire = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidProof(f"the proof is not JSON: {type(exc).__name__}") from exc
    parsed = parse(wire)
    try:
        canonical = encode_parsed(parsed)
    except LedgerError as exc:
        raise InvalidProof(f"the proof holds a value the ledger cannot encode: {exc}") from exc
    if canonical != text:
        raise InvalidProof("the proof text is not in canonical form")
    return parsed


def encode_proof(proof: TxProof) -> bytes:
    """The canonical JSON text of a proof (what the API serves and the verifier requires)."""
    wire = {
        "format": FORMAT,
        "genesis_hash": proof.genesis_hash.hex(),
        "height": proof.header.height,
        "tx_id": proof.tx.id.hex(),
        "header": encode(proof.header.to_wire()).hex(),
        "certificate": encode(proof.certificate.to_wire()).hex(),
        "tx": encode_tx(proof.tx).hex(),
        "receipt": encode(proof.receipt.to_wire()).hex(),
        "tx_path": _path_to_json(proof.tx_path),
        "receipt_path": _path_to_json(proof.receipt_path),
        "validator_set_changes": encode_changes(proof.validator_set_changes),
    }
    return encode_canonical(wire)


def decode_proof(text: bytes) -> TxProof:
    """The proof of a canonical proof text; raises `InvalidProof` for anything else, a byte out of place included."""
    return decode_canonical(text, _proof_from_json, encode_proof)


_FIELDS = {
    "format": str,
    "genesis_hash": str,
    "height": int,
    "tx_id": str,
    "header": str,
    "certificate": str,
    "tx": str,
    "receipt": str,
    "tx_path": dict,
    "receipt_path": dict,
    "validator_set_changes": list,
}


def _proof_from_json(wire: Any) -> TxProof:
    verify_fields(wire, _FIELDS, FORMAT)
    header, certificate = decode_certified_header(wire)
    try:
        tx = decode_tx(hex_field(wire, "tx"))
        receipt = Receipt.from_wire(decode(hex_field(wire, "receipt")))
    except LedgerError as exc:
        raise InvalidProof(f"the proof holds a malformed part: {exc}") from exc
    if hex_field(wire, "tx_id") != tx.id:
        raise InvalidProof("the proof's tx id is not its tx's")
    return TxProof(
        genesis_hash=hex_field(wire, "genesis_hash"),
        header=header,
        certificate=certificate,
        tx=tx,
        receipt=receipt,
        tx_path=_path_from_json(wire["tx_path"]),
        receipt_path=_path_from_json(wire["receipt_path"]),
        validator_set_changes=decode_changes(wire["validator_set_changes"]),
    )


def verify_fields(wire: Any, fields: dict[str, type], form: str) -> None:
    """Raise `InvalidProof` unless `wire` is an object of exactly `fields`, of their JSON types, of format `form`."""
    if not isinstance(wire, dict) or set(wire) != set(fields):
        raise InvalidProof(f"a proof is a JSON object with exactly the fields {sorted(fields)}")
    for name, kind in fields.items():
        if type(wire[name]) is not kind:
            raise InvalidProof(f"proof field {name!r} must be a {kind.__name__}")
    if wire["format"] != form:
        raise InvalidProof(f"unknown proof format {wire['format']!r}; this verifier reads {form!r}")


def decode_certified_header(wire: dict[str, Any]) -> tuple[BlockHeader, CommitCertificate]:
    """The `header` and `certificate` fields of a proof, each the hex of its canonical encoding."""
    try:
        header = BlockHeader.from_wire(decode(hex_field(wire, "header")))
        certificate = CommitCertificate.from_wire(decode(hex_field(wire, "certificate")))
    except LedgerError as exc:
        raise InvalidProof(f"the proof holds a malformed part: {exc}") from exc
    if wire["height"] != header.height:
        raise InvalidProof("the proof's height is not its header's")
    return header, certificate


def encode_changes(changes: Sequence[EpochLink]) -> list[dict[str, str]]:
    """The `validator_set_changes` field of a proof."""
    return [_change_to_json(change) for change in changes]


def decode_changes(wire: list[Any]) -> tuple[EpochLink, ...]:
    """The changes of a proof's `validator_set_changes` field."""
    if len(wire) > MAX_EPOCH_LINKS:
        raise InvalidProof(f"a proof names at most {MAX_EPOCH_LINKS} validator-set changes")
    return tuple(_change_from_json(change) for change in wire)


def hex_field(wire: dict[str, Any], name: str) -> bytes:
    try:
        return bytes.fromhex(wire[name])
    except ValueError as exc:
        raise InvalidProof(f"proof field {name!r} must be hex") from exc


def _change_to_json(change: EpochLink) -> dict[str, str]:
    return {
        "certificate": encode(change.certificate.to_wire()).hex(),
        "header": encode(change.header.to_wire()).hex(),
        "validators": encode(change.validators.to_wire()).hex(),
    }


def _change_from_json(wire: Any) -> EpochLink:
    if not isinstance(wire, dict) or set(wire) != {"certificate", "header", "validators"}:
        raise InvalidProof("a validator-set change is an object of `certificate`, `header` and `validators`")
    if not all(type(value) is str for value in wire.values()):
        raise InvalidProof("a validator-set change holds hex strings")
    try:
        return EpochLink(
            validators_from_wire(decode(hex_field(wire, "validators"))),
            BlockHeader.from_wire(decode(hex_field(wire, "header"))),
            CommitCertificate.from_wire(decode(hex_field(wire, "certificate"))),
        )
    except LedgerError as exc:
        raise InvalidProof(f"a validator-set change is malformed: {exc}") from exc


def _path_to_json(path: MerklePath) -> dict[str, Any]:
    return {"hashes": [h.hex() for h in path.hashes], "index": path.index, "size": path.size}


def _path_from_json(wire: dict[str, Any]) -> MerklePath:
    if set(wire) != {"hashes", "index", "size"}:
        raise InvalidProof("a Merkle path is an object of `hashes`, `index` and `size`")
    if type(wire["index"]) is not int or type(wire["size"]) is not int or type(wire["hashes"]) is not list:
        raise InvalidProof("a Merkle path's index and size are integers, its hashes a list")
    if len(wire["hashes"]) > MAX_PATH_HASHES or not all(type(h) is str for h in wire["hashes"]):
        raise InvalidProof(f"a Merkle path is at most {MAX_PATH_HASHES} hex hashes")
    try:
        hashes = tuple(bytes.fromhex(h) for h in wire["hashes"])
    except ValueError as exc:
        raise InvalidProof("a Merkle path's hashes must be hex") from exc
    return MerklePath(wire["index"], wire["size"], hashes)


__all__ = [
    "FORMAT",
    "InvalidProof",
    "MerklePath",
    "Proven",
    "TxProof",
    "compute_signers",
    "compute_tx_proof",
    "decode_canonical",
    "decode_certified_header",
    "decode_changes",
    "decode_proof",
    "encode_canonical",
    "encode_changes",
    "encode_proof",
    "hex_field",
    "verify_certified_header",
    "verify_fields",
    "verify_tx_proof",
]
