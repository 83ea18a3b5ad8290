"""Txs: their decoder answers only `InvalidTransaction`, their signed bytes carry a domain tag and the chain,
a tx nests no deeper than every carrier can decode, and the block's tx root covers each signature."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from consensus.messages import NewView, PreparedCertificate, PrePrepare, ViewChange, decode_message, encode_message
from contracts import load_contracts
from ledger.block import Block, BlockHeader, check_block_place, compute_tx_root, genesis_hash
from ledger.encoding import decode, encode
from ledger.errors import InvalidBlock, InvalidSignature, InvalidTransaction
from ledger.keys import verify
from ledger.store import Store
from ledger.tx import MAX_TX_DEPTH, TX_DOMAIN, Tx, decode_tx, encode_tx, make_tx, tx_from_wire
from node.admission import Admission
from tests.adversarial.hostile import hostile_bytes, hostile_values, in_map, wrap
from tests.helpers.builders import make_network

NETWORK = make_network(4)
TX = NETWORK.tx(
    "channel-1",
    "order.create",
    {"external_ref": "r-1", "customer_hash": "0" * 64, "currency": "EUR", "lines": [{"sku": "TEE", "qty": 1}]},
)


def nested_payload(levels: int) -> dict[str, Any]:
    """A payload whose signed tx map nests `levels` deep (the tx map is level 1, the payload level 2)."""
    value: Any = 0
    for _ in range(levels - 2):
        value = [value]
    return {"deep": value}


@given(hostile_bytes())
def test_decode_tx_answers_only_invalid_transaction(data: bytes) -> None:
    with contextlib.suppress(InvalidTransaction):
        decode_tx(data)


@given(hostile_values())
def test_a_hostile_payload_is_refused_with_invalid_transaction(value: bytes) -> None:
    try:
        tx = decode_tx(wrap(TX.to_wire(), "payload", in_map("value", value)))
    except InvalidTransaction:
        return
    assert decode_tx(encode_tx(tx)) == tx


def test_a_payload_nested_past_the_tx_bound_is_refused() -> None:
    NETWORK.tx("channel-1", "config.set", nested_payload(MAX_TX_DEPTH))
    with pytest.raises(InvalidTransaction, match="nested deeper"):
        tx_from_wire({**TX.to_wire(), "payload": nested_payload(MAX_TX_DEPTH + 1)})
    with pytest.raises(InvalidTransaction, match="nested deeper"):
        tx_from_wire({**TX.to_wire(), "payload": nested_payload(600)})


def test_the_deepest_tx_still_decodes_inside_the_deepest_carrier() -> None:
    """A NEW-VIEW carrying a VIEW-CHANGE whose prepared PRE-PREPARE holds the deepest tx allowed."""
    genesis = NETWORK.genesis
    tx = NETWORK.tx("channel-1", "order.create", nested_payload(MAX_TX_DEPTH))
    header = BlockHeader(genesis.chain_id, 1, genesis_hash(genesis), 1, 0, "node-0", compute_tx_root([tx]), b"", b"")
    pre_prepare = PrePrepare(genesis.chain_id, 0, 1, Block(header, (tx,)), "node-0")
    prepared = PreparedCertificate(pre_prepare, ())
    view_change = ViewChange(genesis.chain_id, 1, 0, None, prepared, "node-1")
    new_view = NewView(genesis.chain_id, 1, (view_change,), pre_prepare, "node-1")
    back = decode_message(encode_message(new_view))
    assert isinstance(back, NewView) and back.view_changes[0].prepared is not None
    assert back.view_changes[0].prepared.pre_prepare.block.txs == (tx,)


def test_signed_bytes_start_with_the_chain_and_the_domain_tag() -> None:
    signed = TX.signing_bytes()
    fields = decode(signed)
    assert list(fields)[:2] == ["chain_id", "domain"]
    assert fields["domain"] == TX_DOMAIN and fields["chain_id"] == NETWORK.genesis.chain_id
    untagged = dict(fields)
    del untagged["domain"]
    key = NETWORK.keys["channel-1"]
    with pytest.raises(InvalidSignature):
        verify(key.public, signed, key.sign(encode(untagged)))


def test_the_same_fields_on_another_chain_have_another_id() -> None:
    key = NETWORK.keys["channel-1"]
    other = make_tx("other-chain", TX.kind, TX.signer, TX.nonce, TX.payload, key, valid_until=TX.valid_until)
    assert other.id != TX.id
    with pytest.raises(InvalidSignature):
        dataclasses.replace(other, signature=TX.signature, body=b"").verify_signature(key.public)


def _with_signature(tx: Tx, signature: bytes) -> Tx:
    return tx_from_wire({**tx.to_wire(), "signature": signature})


def test_the_tx_root_covers_each_signature() -> None:
    swapped = _with_signature(TX, bytes(64))
    assert swapped.id == TX.id
    assert compute_tx_root([swapped]) != compute_tx_root([TX])


def test_a_block_whose_signature_was_swapped_fails_its_tx_root() -> None:
    genesis = NETWORK.genesis
    parent = genesis_hash(genesis)
    header = BlockHeader(genesis.chain_id, 1, parent, 1, 0, "node-0", compute_tx_root([TX]), b"", b"")
    check_block_place(Block(header, (TX,)), genesis.chain_id, 1, parent)
    with pytest.raises(InvalidBlock, match="tx root"):
        check_block_place(Block(header, (_with_signature(TX, bytes(64)),)), genesis.chain_id, 1, parent)


def test_admission_verifies_a_copy_of_a_known_tx_that_carries_other_signature_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    try:
        admission = Admission(NETWORK.genesis, load_contracts(), store)
        admission.check(TX)
        admission.check(TX)
        with pytest.raises(InvalidSignature):
            admission.check(_with_signature(TX, bytes(64)))
        with pytest.raises(InvalidSignature):
            admission.verify(_with_signature(TX, TX.signature[::-1]))
    finally:
        store.close()
