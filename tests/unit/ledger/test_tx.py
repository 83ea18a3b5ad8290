"""Transactions: ids, signatures and wire checks survive the trip through bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.errors import InvalidSignature, InvalidTransaction
from ledger.tx import MAX_TX_BYTES, decode_tx, encode_tx, tx_from_wire
from tests.helpers.builders import make_network

NETWORK = make_network(1)
KEY = NETWORK.keys["channel-1"].public


@given(st.dictionaries(st.text(max_size=8), st.integers(0, 10**9) | st.text(max_size=8), max_size=6))
def test_round_trip_keeps_id_and_signature(payload: dict[str, object]) -> None:
    tx = NETWORK.tx("channel-1", "order.create", payload)
    back = decode_tx(encode_tx(tx))
    assert back == tx and back.id == tx.id
    back.verify_signature(KEY)


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
