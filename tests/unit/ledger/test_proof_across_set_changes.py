"""Tx proofs across validator-set changes: the verifier walks the certified changes from the genesis set.

The chain below changes its set twice. Genesis: `node-0`..`node-3`. Block 3 names the set `node-1`..`node-4`
(certified by the genesis set), which certifies blocks 4 to 6; block 6 names `node-2`..`node-5` (certified by
the second set), which certifies block 7 on.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.block import Block, Receipt
from ledger.commitment import EMPTY
from ledger.epochs import EpochLink, InvalidEpochLink
from ledger.errors import InvalidCertificate, LedgerError
from ledger.genesis import Identity
from ledger.keys import PrivateKey
from ledger.membership import ValidatorSet
from ledger.proof import TxProof, compute_tx_proof, decode_proof, encode_proof, verify_tx_proof
from tests.helpers.builders import make_network
from tests.helpers.chain import certify, make_block
from tests.helpers.tamper import draw_byte_change, flip_bit

NETWORK = make_network(validators=4)
for _newcomer in ("node-4", "node-5"):
    NETWORK.keys[_newcomer] = PrivateKey.from_seed_text(f"proofs/{_newcomer}")

SETS = [
    ["node-0", "node-1", "node-2", "node-3"],
    ["node-1", "node-2", "node-3", "node-4"],
    ["node-2", "node-3", "node-4", "node-5"],
]
"""The validator ids of each set, in order: genesis, then after each change."""

LINK_HEIGHTS = [3, 6]
"""The last block before each change (it names the next set)."""


def validator_set(ids: list[str]) -> ValidatorSet:
    return ValidatorSet(
        tuple(Identity(v, f"org-{int(v[-1]) % 4}", NETWORK.keys[v].public, frozenset({"validator"})) for v in ids)
    )


def block_at(height: int, txs_from: int = 0, next_set: ValidatorSet | None = None) -> tuple[Block, list[Receipt]]:
    txs = [NETWORK.tx("channel-1", "order.create", {"n": txs_from + n}) for n in range(3)]
    receipts = [Receipt(tx.id, True, "ok", "", {}) for tx in txs]
    block = make_block(NETWORK, height, bytes([height]) * 32, txs, receipts, EMPTY, 1_700_000_000_000)
    if next_set is not None:
        block = Block(dataclasses.replace(block.header, validators_hash=next_set.hash()), block.txs)
    return block, receipts


def make_link(change: int, signers: list[str] | None = None) -> EpochLink:
    """Change `change` (0 or 1): the block before it names the new set, certified by the set before."""
    new_set = validator_set(SETS[change + 1])
    block, _ = block_at(LINK_HEIGHTS[change], 100 * change, new_set)
    return EpochLink(new_set, block.header, certify(NETWORK, block, signers or SETS[change][1:]))


LINKS = (make_link(0), make_link(1))


def proof_at(height: int, changes: tuple[EpochLink, ...], signers: list[str]) -> TxProof:
    block, receipts = block_at(height, 1000 + height)
    return compute_tx_proof(
        NETWORK.genesis, block.header, certify(NETWORK, block, signers), block.txs, receipts, 1, changes
    )


CASES = {
    "no change": (2, (), SETS[0][:3]),
    "one change": (5, LINKS[:1], SETS[1][1:]),
    "two changes": (9, LINKS, SETS[2][1:]),
}


@pytest.mark.parametrize("case", CASES)
def test_a_proof_verifies_with_the_set_its_changes_lead_to(case: str) -> None:
    height, changes, signers = CASES[case]
    proof = proof_at(height, changes, signers)
    proven = verify_tx_proof(decode_proof(encode_proof(proof)), NETWORK.genesis)
    assert proven.height == height and proven.tx == proof.tx
    assert proven.validator_set_changes == len(changes)
    assert proven.signers == tuple(signers)


@pytest.mark.parametrize("case", ["one change", "two changes"])
def test_a_certificate_by_the_set_before_the_last_change_fails(case: str) -> None:
    height, changes, _ = CASES[case]
    old_set = SETS[len(changes) - 1]
    proof = proof_at(height, changes, old_set[:3])
    with pytest.raises(InvalidCertificate, match="unknown validator"):
        verify_tx_proof(decode_proof(encode_proof(proof)), NETWORK.genesis)


def test_a_proof_that_leaves_a_change_out_fails() -> None:
    for changes in [LINKS[:1], LINKS[1:], ()]:
        with pytest.raises(LedgerError):
            verify_tx_proof(proof_at(9, changes, SETS[2][1:]), NETWORK.genesis)


def test_a_change_certified_by_a_set_that_was_not_in_force_fails() -> None:
    forged = make_link(1, signers=SETS[0][:3])
    with pytest.raises(InvalidCertificate, match="unknown validator 'node-0'"):
        verify_tx_proof(proof_at(9, (LINKS[0], forged), SETS[2][1:]), NETWORK.genesis)


def test_a_change_whose_set_is_not_the_one_its_block_names_fails() -> None:
    swapped = dataclasses.replace(LINKS[1], validators=validator_set(["node-3", "node-4", "node-5", "node-0"]))
    with pytest.raises(InvalidEpochLink, match="does not name the validator set"):
        verify_tx_proof(proof_at(9, (LINKS[0], swapped), ["node-3", "node-4", "node-5"]), NETWORK.genesis)


@pytest.mark.parametrize(
    "changes", [(LINKS[1], LINKS[0]), (LINKS[0], LINKS[0], LINKS[1])], ids=["reversed", "repeated"]
)
def test_changes_out_of_order_fail(changes: tuple[EpochLink, ...]) -> None:
    with pytest.raises(LedgerError):
        verify_tx_proof(proof_at(9, changes, SETS[2][1:]), NETWORK.genesis)


def test_a_change_at_or_above_the_proven_block_fails() -> None:
    with pytest.raises(InvalidEpochLink, match="not below 6"):
        verify_tx_proof(proof_at(6, LINKS, SETS[1][1:]), NETWORK.genesis)


TWO_CHANGES_TEXT = encode_proof(proof_at(9, LINKS, SETS[2][1:]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_single_byte_change_of_a_proof_across_changes_is_refused(data: st.DataObject) -> None:
    with pytest.raises(LedgerError):
        verify_tx_proof(decode_proof(draw_byte_change(data, TWO_CHANGES_TEXT)), NETWORK.genesis)


def test_every_byte_of_the_changes_is_bound() -> None:
    start = TWO_CHANGES_TEXT.index(b'"validator_set_changes"')
    for position in range(start, len(TWO_CHANGES_TEXT) - 1, 7):
        with pytest.raises(LedgerError):
            verify_tx_proof(decode_proof(flip_bit(TWO_CHANGES_TEXT, position)), NETWORK.genesis)
