"""What one validator (or anyone on the wire) can send as a consensus message, an envelope, a gossip batch,
or leave in a consensus log: every decoder answers with its own typed error and nothing else."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.errors import InvalidMessage
from consensus.messages import Prepare, decode_message, encode_message
from consensus.records import load_records as restore_records
from ledger.block import Block, BlockHeader, compute_tx_root, genesis_hash
from ledger.encoding import encode
from ledger.errors import LedgerError
from node.wal import FILE_MAGIC, FRAME_MAGIC, CorruptLog, load_records
from p2p.envelope import decode_envelope, seal
from p2p.errors import Dropped
from p2p.gossip import TxGossip
from tests.adversarial.hostile import deep_map, hostile_bytes, hostile_values, in_map, wrap
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
TX = NET.tx("channel-1", "order.create", {"external_ref": "r-1"})
HEADER = BlockHeader(GENESIS.chain_id, 1, genesis_hash(GENESIS), 1, 0, "node-0", compute_tx_root([TX]), b"", b"")
PRE_PREPARE_WIRE: dict[str, Any] = {
    "type": "pre_prepare",
    "chain_id": GENESIS.chain_id,
    "sender": "node-0",
    "signature": b"\x00" * 64,
    "view": 0,
    "height": 1,
    "block": Block(HEADER, (TX,)).to_wire(),
}


@given(hostile_bytes())
def test_decode_message_raises_only_invalid_message(data: bytes) -> None:
    with contextlib.suppress(InvalidMessage):
        decode_message(data)


@given(st.sampled_from(["block", "view", "height", "signature", "sender"]), hostile_values())
def test_a_hostile_field_of_a_pre_prepare_is_invalid_message(field: str, value: bytes) -> None:
    with contextlib.suppress(InvalidMessage):
        decode_message(wrap(PRE_PREPARE_WIRE, field, value))


@given(hostile_values())
def test_a_hostile_payload_inside_a_proposed_tx_is_invalid_message(value: bytes) -> None:
    block = PRE_PREPARE_WIRE["block"]
    tx_wire = block["txs"][0]
    raw_tx = wrap(tx_wire, "payload", in_map("value", value))
    raw_block = wrap(block, "txs", b"\x91" + raw_tx)
    with contextlib.suppress(InvalidMessage):
        decode_message(wrap(PRE_PREPARE_WIRE, "block", raw_block))


@given(hostile_bytes())
def test_decode_envelope_raises_only_dropped(data: bytes) -> None:
    with contextlib.suppress(Dropped):
        decode_envelope(data)


@given(hostile_bytes())
def test_a_gossip_batch_never_raises(data: bytes) -> None:
    gossip = TxGossip(transport=None)  # type: ignore[arg-type]  # decoding never sends
    gossip.decode_batch(data)
    gossip.decode_batch(b"\x92" + b"\xc4" + bytes([min(len(data), 255)]) + data[:255] + deep_map(600))


def _frame(body: bytes) -> bytes:
    header = FRAME_MAGIC + len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big")
    return header + zlib.crc32(header).to_bytes(4, "big") + body


@settings(max_examples=50)
@given(hostile_bytes())
def test_a_consensus_log_record_that_does_not_read_back_is_corrupt_log(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("wal")) / "consensus.log"
    good = {"type": "signed", "message": encode_message(Prepare(GENESIS.chain_id, 0, 1, b"\x01" * 32, "node-0"))}
    path.write_bytes(FILE_MAGIC + _frame(encode(good)) + _frame(data))
    try:
        records = load_records(path)
    except CorruptLog:
        return
    with contextlib.suppress(LedgerError):
        restore_records(records)


@given(hostile_values())
def test_a_signed_record_holding_a_hostile_message_does_not_restore(value: bytes) -> None:
    with contextlib.suppress(LedgerError):
        restore_records([{"type": "signed", "message": value}])


def test_an_envelope_sealed_around_a_deep_body_opens_and_the_body_is_refused_by_its_decoder() -> None:
    frame = seal(
        NET.keys["node-0"],
        sender="node-0",
        recipient="node-1",
        chain_id=GENESIS.chain_id,
        seq=1,
        kind="consensus",
        body=deep_map(100_000),
    )
    envelope = decode_envelope(frame)
    with pytest.raises(InvalidMessage, match="not valid msgpack"):
        decode_message(envelope.body)
