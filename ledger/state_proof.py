"""Offline proofs that one world-state entry held a value after a certified block.

A state proof shows, to whoever holds only the genesis file, that after block
H the entry `key` of the world state (an order's record with its status, a
stock position) held exactly `value`: the certified header of block H (with
its commit certificate, and the validator-set changes from genesis up to it,
as in a tx proof), the entry, and the sibling hashes on its path in the state
tree up to the header's `state_root` (`ledger.commitment`). It proves
inclusion at that height only: a later block may have changed the entry.

The text is canonical JSON like a tx proof's (`ledger.proof`): every byte is
bound. docs/adr/0013-state-commitment-merkle-tree.md records the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.block import BlockHeader, CommitCertificate, genesis_hash
from ledger.commitment import DEPTH, is_valid_state_path
from ledger.encoding import decode, encode
from ledger.epochs import EpochLink
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.proof import (
    InvalidProof,
    compute_signers,
    decode_canonical,
    decode_certified_header,
    decode_changes,
    encode_canonical,
    encode_changes,
    hex_field,
    verify_certified_header,
    verify_fields,
)

FORMAT = "oms-ledger/state-proof/1"
"""What the `format` field of every state proof of this shape says."""

MAX_KEY_CHARS = 1024
"""Longest state key a proof may name."""


@dataclass(frozen=True)
class StateProof:
    """Everything that shows one state entry's value after a certified block, checkable with the genesis file."""

    genesis_hash: bytes
    header: BlockHeader
    """The block after which the entry held `value`; its `state_root` is the tree's root."""
    certificate: CommitCertificate
    key: str
    """The state key (`contracts.keys`), e.g. `order/<id>` or `stock/<location>/<sku>`."""
    value: bytes
    """The entry's stored bytes (canonical msgpack)."""
    siblings: tuple[bytes, ...]
    """Sibling hashes on the entry's path, from the root down (`ledger.commitment.compute_state_path`)."""
    validator_set_changes: tuple[EpochLink, ...] = ()


@dataclass(frozen=True)
class ProvenState:
    """What a state proof proves."""

    key: str
    value: Any
    """The entry's decoded value."""
    height: int
    block_hash: bytes
    timestamp_ms: int
    signers: tuple[str, ...]
    organisations: tuple[str, ...]
    validator_set_changes: int


def compute_state_proof(
    genesis: Genesis,
    header: BlockHeader,
    certificate: CommitCertificate,
    key: str,
    value: bytes,
    siblings: Sequence[bytes],
    changes: Sequence[EpochLink] = (),
) -> StateProof:
    """The proof of entry `key` = `value` in the state after block `header`, from its path in that state's tree."""
    return StateProof(genesis_hash(genesis), header, certificate, key, value, tuple(siblings), tuple(changes))


def verify_state_proof(proof: StateProof, genesis: Genesis) -> ProvenState:
    """Raise `InvalidProof` (or `InvalidBlock`) unless `proof` shows its entry in the certified state of the chain
    of `genesis`; return what it proves."""
    header = proof.header
    validators = verify_certified_header(
        genesis, proof.genesis_hash, header, proof.certificate, proof.validator_set_changes
    )
    if not is_valid_state_path(proof.key.encode(), proof.value, proof.siblings, header.state_root):
        raise InvalidProof(f"the entry {proof.key!r} is not under the block's state root with this value")
    try:
        value = decode(proof.value)
    except LedgerError as exc:
        raise InvalidProof(f"the entry's value is not ledger data: {exc}") from exc
    signers, orgs = compute_signers(proof.certificate, validators)
    return ProvenState(
        key=proof.key,
        value=value,
        height=header.height,
        block_hash=header.hash(),
        timestamp_ms=header.timestamp_ms,
        signers=signers,
        organisations=orgs,
        validator_set_changes=len(proof.validator_set_changes),
    )


def encode_state_proof(proof: StateProof) -> bytes:
    """The canonical JSON text of a state proof (what the API serves and the verifier requires)."""
    return encode_canonical(
        {
            "format": FORMAT,
            "genesis_hash": proof.genesis_hash.hex(),
            "height": proof.header.height,
            "header": _encode_hex(proof.header.to_wire()),
            "certificate": _encode_hex(proof.certificate.to_wire()),
            "key": proof.key,
            "value": proof.value.hex(),
            "siblings": [sibling.hex() for sibling in proof.siblings],
            "validator_set_changes": encode_changes(proof.validator_set_changes),
        }
    )


def _encode_hex(wire: Any) -> str:
    return encode(wire).hex()


_FIELDS = {
    "format": str,
    "genesis_hash": str,
    "height": int,
    "header": str,
    "certificate": str,
    "key": str,
    "value": str,
    "siblings": list,
    "validator_set_changes": list,
}


def decode_state_proof(text: bytes) -> StateProof:
    """The state proof of a canonical proof text; raises `InvalidProof` for anything else."""
    return decode_canonical(text, _state_proof_from_json, encode_state_proof)


def _state_proof_from_json(wire: Any) -> StateProof:
    verify_fields(wire, _FIELDS, FORMAT)
    header, certificate = decode_certified_header(wire)
    if not 0 < len(wire["key"]) <= MAX_KEY_CHARS:
        raise InvalidProof(f"a state key is 1 to {MAX_KEY_CHARS} characters")
    siblings = wire["siblings"]
    if len(siblings) >= DEPTH or not all(type(sibling) is str and len(sibling) == 64 for sibling in siblings):
        raise InvalidProof(f"a state path is fewer than {DEPTH} hashes of 32 bytes in hex")
    try:
        path = tuple(bytes.fromhex(sibling) for sibling in siblings)
    except ValueError as exc:
        raise InvalidProof("a state path's hashes must be hex") from exc
    return StateProof(
        genesis_hash=hex_field(wire, "genesis_hash"),
        header=header,
        certificate=certificate,
        key=wire["key"],
        value=hex_field(wire, "value"),
        siblings=path,
        validator_set_changes=decode_changes(wire["validator_set_changes"]),
    )


__all__ = [
    "FORMAT",
    "ProvenState",
    "StateProof",
    "compute_state_proof",
    "decode_state_proof",
    "encode_state_proof",
    "verify_state_proof",
]
