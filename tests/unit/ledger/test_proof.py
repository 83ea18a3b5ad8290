"""Tx proofs: built from a certified block, checked with only the genesis, and refused once any byte changes."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.block import Receipt, genesis_hash
from ledger.commitment import EMPTY
from ledger.errors import InvalidCertificate, LedgerError
from ledger.proof import InvalidProof, TxProof, compute_tx_proof, decode_proof, encode_proof, verify_tx_proof
from tests.helpers.builders import make_network
from tests.helpers.chain import certify, make_block
from tests.helpers.tamper import draw_byte_change

NETWORK = make_network(validators=4)
TXS = [NETWORK.tx("channel-1", "order.create", {"n": n}) for n in range(5)]
RECEIPTS = [Receipt(tx.id, n != 3, "ok" if n != 3 else "refused", f"tx {n}", {"n": n}) for n, tx in enumerate(TXS)]
BLOCK = make_block(NETWORK, 7, b"\x11" * 32, TXS, RECEIPTS, EMPTY, 1_700_000_000_700)
CERTIFICATE = certify(NETWORK, BLOCK)


def build(index: int) -> TxProof:
    return compute_tx_proof(NETWORK.genesis, BLOCK.header, CERTIFICATE, BLOCK.txs, RECEIPTS, index)


PROOF_TEXT = encode_proof(build(2))


@pytest.mark.parametrize("index", range(len(TXS)))
def test_a_proof_of_each_tx_of_a_block_verifies_and_says_what_it_proves(index: int) -> None:
    proven = verify_tx_proof(decode_proof(encode_proof(build(index))), NETWORK.genesis)
    assert proven.tx == TXS[index]
    assert proven.receipt == RECEIPTS[index]
    assert proven.height == 7
    assert proven.block_hash == BLOCK.hash()
    assert proven.signers == ("node-0", "node-1", "node-2")
    assert proven.organisations == ("org-0", "org-1", "org-2")


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_every_single_byte_change_of_a_proof_is_refused(data: st.DataObject) -> None:
    with pytest.raises(LedgerError):
        verify_tx_proof(decode_proof(draw_byte_change(data, PROOF_TEXT)), NETWORK.genesis)


def test_a_proof_is_refused_against_another_genesis() -> None:
    other = make_network(validators=4, chain_id="oms-other")
    with pytest.raises(InvalidProof, match="another genesis"):
        verify_tx_proof(decode_proof(PROOF_TEXT), other.genesis)
    same_chain_other_keys = dataclasses.replace(NETWORK.genesis, genesis_time_ms=NETWORK.genesis.genesis_time_ms + 1)
    assert genesis_hash(same_chain_other_keys) != genesis_hash(NETWORK.genesis)
    with pytest.raises(InvalidProof, match="another genesis"):
        verify_tx_proof(decode_proof(PROOF_TEXT), same_chain_other_keys)


def test_a_certificate_short_of_a_quorum_proves_nothing() -> None:
    weak = dataclasses.replace(build(0), certificate=certify(NETWORK, BLOCK, ["node-0", "node-1"]))
    with pytest.raises(InvalidCertificate, match="quorum"):
        verify_tx_proof(decode_proof(encode_proof(weak)), NETWORK.genesis)


def test_a_receipt_of_another_tx_is_refused_even_under_the_right_root() -> None:
    swapped = dataclasses.replace(build(1), receipt=RECEIPTS[2])
    with pytest.raises(InvalidProof, match="another tx"):
        verify_tx_proof(swapped, NETWORK.genesis)


@pytest.mark.parametrize(
    "text",
    [b"", b"[]", b"{}", b'{"format":"x"}\n', PROOF_TEXT.replace(b"\n", b""), PROOF_TEXT + b" ", b"[" * 100_000],
)
def test_malformed_proof_texts_are_refused_with_a_reason(text: bytes) -> None:
    with pytest.raises(InvalidProof):
        decode_proof(text)
