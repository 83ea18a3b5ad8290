"""State proofs: one state entry checked against a certified state root with only the genesis file."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.commitment import build_tree, compute_leaf, compute_state_path
from ledger.encoding import encode
from ledger.errors import InvalidCertificate, LedgerError
from ledger.state_proof import (
    StateProof,
    compute_state_proof,
    decode_state_proof,
    encode_state_proof,
    verify_state_proof,
)
from tests.helpers.builders import make_network
from tests.helpers.chain import certify, make_block
from tests.helpers.tamper import draw_byte_change

NETWORK = make_network(validators=4)
STATE = {f"order/A-{n}".encode(): encode({"status": "placed" if n % 3 else "shipped", "n": n}) for n in range(300)}
NODES: dict[bytes, bytes | None] = {}
ROOT = build_tree((compute_leaf(key, value) for key, value in STATE.items()), NODES)
BLOCK = make_block(NETWORK, 12, b"\x22" * 32, [], [], ROOT, 1_700_000_012_000)
CERTIFICATE = certify(NETWORK, BLOCK)


def prove(key: bytes, value: bytes | None = None) -> StateProof:
    siblings = compute_state_path(lambda place: NODES.get(place), key)
    assert siblings is not None
    value = STATE[key] if value is None else value
    return compute_state_proof(NETWORK.genesis, BLOCK.header, CERTIFICATE, key.decode(), value, siblings)


PROOF_TEXT = encode_state_proof(prove(b"order/A-9"))


def test_a_state_proof_verifies_and_says_what_the_entry_held() -> None:
    proven = verify_state_proof(decode_state_proof(PROOF_TEXT), NETWORK.genesis)
    assert proven.key == "order/A-9" and proven.value == {"status": "shipped", "n": 9}
    assert proven.height == 12 and proven.block_hash == BLOCK.hash()
    assert proven.organisations == ("org-0", "org-1", "org-2")


def test_another_value_or_another_key_on_the_same_path_fails() -> None:
    forged = prove(b"order/A-9", encode({"status": "delivered", "n": 9}))
    with pytest.raises(LedgerError, match="not under the block's state root"):
        verify_state_proof(decode_state_proof(encode_state_proof(forged)), NETWORK.genesis)
    moved = dataclasses.replace(prove(b"order/A-9"), key="order/A-10")
    with pytest.raises(LedgerError, match="not under the block's state root"):
        verify_state_proof(moved, NETWORK.genesis)


def test_a_state_proof_short_of_a_quorum_fails() -> None:
    weak = dataclasses.replace(prove(b"order/A-1"), certificate=certify(NETWORK, BLOCK, ["node-0", "node-1"]))
    with pytest.raises(InvalidCertificate, match="quorum"):
        verify_state_proof(weak, NETWORK.genesis)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_single_byte_change_of_a_state_proof_is_refused(data: st.DataObject) -> None:
    with pytest.raises(LedgerError):
        verify_state_proof(decode_state_proof(draw_byte_change(data, PROOF_TEXT)), NETWORK.genesis)


@pytest.mark.parametrize(
    "text", [b"", b"{}", PROOF_TEXT.replace(b'"siblings":[', b'"siblings":[1,'), PROOF_TEXT + b"\n", b"[" * 10_000]
)
def test_malformed_state_proofs_are_refused(text: bytes) -> None:
    with pytest.raises(LedgerError):
        decode_state_proof(text)
