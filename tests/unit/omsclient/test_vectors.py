"""The signing test vectors of `tests/vectors/` (docs/spec/signing.md), reproduced byte for byte.

`encoding.json` holds values and their canonical encoding; `txs.json` holds
txs, each with the seed of its signer's key and what signing it gives: the
signing bytes, the Ed25519 signature, the tx id, the canonical encoding of
the signed tx (as blocks and `POST /v1/txs` carry it) and its JSON form (as
`POST /v1/tx` takes it). An implementation in another language is right when
it reproduces every one. They were written once by running this module
(`python -m tests.unit.omsclient.test_vectors`) and are committed: the test
recomputes each from its inputs and compares, so a change of the encoding or
of the signed fields fails here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.encoding import encode, sha256
from ledger.errors import InvalidSignature
from ledger.keys import verify
from omsclient import Signer, tx_id
from omsclient.signing import tx_to_wire

VECTORS = Path(__file__).resolve().parents[2] / "vectors"

TX_FIELDS = ("chain_id", "kind", "signer", "nonce", "payload", "valid_until")
"""The fields of a tx a vector gives as input (all but the signature)."""


def read_vectors(name: str) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))["vectors"]
    return vectors


def decode_value(value: Any) -> Any:
    """A vector's value, with `{"$bytes": HEX}` read as bytes (JSON has no bytes)."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {key: decode_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    return value


def compute_encoding(vector: dict[str, Any]) -> dict[str, Any]:
    return {"name": vector["name"], "value": vector["value"], "hex": encode(decode_value(vector["value"])).hex()}


def compute_tx(vector: dict[str, Any]) -> dict[str, Any]:
    """Everything a tx vector states, computed from its inputs (`name`, `seed_hex`, `tx`)."""
    seed = bytes.fromhex(vector["seed_hex"])
    fields = vector["tx"]
    signer = Signer(fields["signer"], seed)
    signed = signer.sign(
        fields["kind"],
        fields["payload"],
        chain_id=fields["chain_id"],
        valid_until=fields["valid_until"],
        nonce=fields["nonce"],
    )
    signing_bytes = encode({"domain": "oms-ledger/tx", **{name: fields[name] for name in TX_FIELDS}}, max_depth=16)
    return {
        "name": vector["name"],
        "seed_hex": vector["seed_hex"],
        "public_key_hex": signer.public_key.hex(),
        "tx": fields,
        "signing_bytes_hex": signing_bytes.hex(),
        "signature_hex": signed["signature"],
        "tx_id": tx_id(signed),
        "canonical_hex": encode(tx_to_wire(signed)).hex(),
        "json": signed,
    }


@pytest.mark.parametrize("vector", read_vectors("encoding.json"), ids=lambda v: v["name"])
def test_every_value_encodes_to_its_vector(vector: dict[str, Any]) -> None:
    assert compute_encoding(vector) == vector


@pytest.mark.parametrize("vector", read_vectors("txs.json"), ids=lambda v: v["name"])
def test_every_tx_signs_to_its_vector(vector: dict[str, Any]) -> None:
    assert compute_tx(vector) == vector
    signing_bytes = bytes.fromhex(vector["signing_bytes_hex"])
    assert sha256(signing_bytes).hex() == vector["tx_id"]
    verify(bytes.fromhex(vector["public_key_hex"]), signing_bytes, bytes.fromhex(vector["signature_hex"]))


def test_a_tampered_vector_fails() -> None:
    vector = read_vectors("txs.json")[0]
    for change in ("payload", "nonce", "signature"):
        tampered = copy.deepcopy(vector)
        if change == "payload":
            tampered["tx"]["payload"]["tampered"] = 1
        elif change == "nonce":
            tampered["tx"]["nonce"] += 1
        else:
            tampered["signature_hex"] = ("00" if vector["signature_hex"][:2] != "00" else "01") + vector[
                "signature_hex"
            ][2:]
        assert compute_tx(tampered) != tampered, change
    with pytest.raises(InvalidSignature):
        verify(
            bytes.fromhex(vector["public_key_hex"]),
            bytes.fromhex(vector["signing_bytes_hex"]) + b"\x00",
            bytes.fromhex(vector["signature_hex"]),
        )


ENCODING_ABOUT = 'Values and their canonical encoding (docs/spec/signing.md); {"$bytes": HEX} stands for a bytes value.'
TXS_ABOUT = (
    "Txs signed with the Ed25519 key of a 32-byte seed: the signing bytes, signature, tx id, canonical bytes of "
    "the signed tx and its JSON form (docs/spec/signing.md)."
)


def write_vectors(name: str, vectors: list[dict[str, Any]], about: str) -> None:
    document = {"about": about, "vectors": vectors}
    (VECTORS / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    # Fill in (again) every vector's outputs from its inputs: to add a vector, add its inputs to the file and run
    # this; only a deliberate change of the spec may change an existing vector.
    write_vectors("encoding.json", [compute_encoding(v) for v in read_vectors("encoding.json")], ENCODING_ABOUT)
    write_vectors("txs.json", [compute_tx(v) for v in read_vectors("txs.json")], TXS_ABOUT)
