"""A follower's batches of encoded txs are what a validator's `POST /v1/txs` reads as a msgpack array."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tx import encode_tx, tx_from_wire
from node.api.txs import _decode_msgpack_batch
from p2p.forward import encode_tx_batch
from tests.helpers.builders import make_network

NET = make_network(1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=70))
def test_a_forwarded_batch_reads_back_as_the_same_txs(refs: list[str]) -> None:
    txs = [NET.tx("channel-1", "order.create", {"ref": ref}) for ref in refs]
    read = [tx_from_wire(item) for item in _decode_msgpack_batch(encode_tx_batch([encode_tx(tx) for tx in txs]))]
    assert [tx.id for tx in read] == [tx.id for tx in txs]
