"""Transactions: ids, signatures and wire checks survive the trip through bytes."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import MAX_INT, MIN_INT, decode, encode
from ledger.errors import EncodingError, InvalidSignature, InvalidTransaction
from ledger.tx import MAX_TX_BYTES, MAX_TX_DEPTH, Tx, decode_tx, encode_tx, tx_from_wire
from tests.helpers.builders import make_network

NETWORK = make_network(1)
KEY = NETWORK.keys["channel-1"].public


@given(st.dictionaries(st.text(max_size=8), st.integers(0, 10**9) | st.text(max_size=8), max_size=6))
def test_round_trip_keeps_id_and_signature(payload: dict[str, object]) -> None:
    tx = NETWORK.tx("channel-1", "order.create", payload)
    back = decode_tx(encode_tx(tx))
    assert back == tx and back.id == tx.id
    back.verify_signature(KEY)


payloads = st.recursive(
    st.none() | st.booleans() | st.integers(MIN_INT, MAX_INT) | st.text(max_size=40) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(
    st.text(max_size=300),
    st.text(max_size=40),
    st.text(max_size=40),
    st.integers(MIN_INT, MAX_INT),
    st.dictionaries(st.text(max_size=8), payloads, max_size=5),
    st.integers(MIN_INT, MAX_INT),
    st.binary(max_size=300),
    st.binary(max_size=300),
)
def test_encode_tx_from_the_signed_bytes_writes_the_encoding_of_the_wire_map(
    chain_id: str, kind: str, signer: str, nonce: int, payload: dict, valid_until: int, signature: bytes, other: bytes
) -> None:
    """Chain ids and signatures of every header size, any signer and window: the bytes cut from the signed
    map are those of the wire map, for a tx read from the wire and for one whose signature was swapped."""
    bare = Tx(chain_id, kind, signer, nonce, payload, valid_until, signature)
    tx = tx_from_wire(bare.to_wire())
    assert tx.body
    assert encode_tx(tx) == encode(tx.to_wire()) == encode_tx(bare)
    swapped = dataclasses.replace(tx, signature=other)
    assert encode_tx(swapped) == encode(swapped.to_wire())


def test_a_tx_whose_signed_bytes_do_not_frame_its_fields_is_encoded_from_its_fields() -> None:
    tx = NETWORK.tx("channel-1", "order.create", {"qty": 1})
    for changed in ({"signer": "store-1"}, {"valid_until": tx.valid_until + 1}, {"chain_id": "other"}):
        moved = dataclasses.replace(tx, **changed)
        assert encode_tx(moved) == encode(moved.to_wire())


def test_a_tx_without_signed_bytes_is_encoded_within_the_tx_depth() -> None:
    deep: object = 0
    for _ in range(MAX_TX_DEPTH - 1):
        deep = [deep]
    tx = NETWORK.tx("channel-1", "order.create", {"deep": 0})
    bare = dataclasses.replace(tx, payload={"deep": deep}, body=b"")
    with pytest.raises(EncodingError, match="nested deeper"):
        encode_tx(bare)


def test_changed_field_on_the_wire_fails_its_signature() -> None:
    tx = NETWORK.tx("channel-1", "order.create", {"qty": 1})
    wire = decode(encode_tx(tx))
    wire["payload"]["qty"] = 100
    forged = tx_from_wire(wire)
    assert forged.id != tx.id
    with pytest.raises(InvalidSignature):
        forged.verify_signature(KEY)


def test_wire_shape_is_checked() -> None:
    wire = NETWORK.tx("channel-1", "order.create", {}).to_wire()
    with pytest.raises(InvalidTransaction, match="missing"):
        tx_from_wire({k: v for k, v in wire.items() if k != "nonce"})
    with pytest.raises(InvalidTransaction, match="nonce"):
        tx_from_wire({**wire, "nonce": True})
    with pytest.raises(InvalidTransaction, match="float"):
        tx_from_wire({**wire, "payload": {"price": 1.5}})
    with pytest.raises(InvalidTransaction, match="larger"):
        tx_from_wire({**wire, "payload": {"note": "x" * MAX_TX_BYTES}})
    assert decode(encode(wire)) == wire
