"""Consensus messages: canonical round trip, refusal of junk, and signature checks."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.errors import InvalidMessage
from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    decode_message,
    encode_message,
    sign_message,
)
from consensus.validation import MessageChecker
from ledger.block import commit_sign_bytes
from ledger.encoding import decode, encode
from ledger.keys import PrivateKey, is_valid_signature
from tests.helpers.builders import make_network
from tests.sim.app import SET_KIND, MemoryApp

NETWORK = make_network(validators=4)
GENESIS = NETWORK.genesis
CHAIN = GENESIS.chain_id
APP = MemoryApp(GENESIS, "node-0")

heights = st.integers(min_value=0, max_value=2**40)
hashes = st.binary(min_size=32, max_size=32)
senders = st.sampled_from(GENESIS.validator_ids())


@st.composite
def blocks(draw: st.DrawFn):
    values = draw(st.lists(st.integers(min_value=-(2**31), max_value=2**31), max_size=3))
    txs = [NETWORK.tx("channel-1", SET_KIND, {"key": f"k{i}", "value": v}) for i, v in enumerate(values)]
    return APP.make_block(draw(st.integers(1, 1000)), draw(st.integers(0, 50)), txs)


def _sign(message: Message) -> Message:
    return sign_message(message, NETWORK.keys[message.sender])


pre_prepares = st.builds(
    lambda v, b, s: _sign(PrePrepare(CHAIN, b.header.view + v, b.height, b, s)), st.integers(0, 8), blocks(), senders
)
votes = st.builds(
    lambda kind, v, h, d, s: _sign(kind(CHAIN, v, h, d, s)),
    st.sampled_from([Prepare, Commit]),
    heights,
    heights,
    hashes,
    senders,
)
checkpoints = st.builds(lambda h, d, r, s: _sign(Checkpoint(CHAIN, h, d, r, s)), heights, hashes, hashes, senders)
prepared = st.builds(
    lambda pp, ps: PreparedCertificate(pp, tuple(ps)),
    pre_prepares,
    st.lists(votes.filter(lambda m: isinstance(m, Prepare)), max_size=3),
)
view_changes = st.builds(
    lambda v, h, p, s: _sign(ViewChange(CHAIN, v, h, None, p, s)), heights, heights, st.none() | prepared, senders
)
new_views = st.builds(
    lambda v, vcs, pp, s: _sign(NewView(CHAIN, v, tuple(vcs), pp, s)),
    heights,
    st.lists(view_changes, max_size=3),
    st.none() | pre_prepares,
    senders,
)
messages = st.one_of(pre_prepares, votes, checkpoints, view_changes, new_views)


@settings(max_examples=40, deadline=None)
@given(messages)
def test_encode_decode_round_trip(message):
    data = encode_message(message)
    decoded = decode_message(data)
    assert decoded == message
    assert encode_message(decoded) == data
    assert encode(decode(data)) == data, "a PRE-PREPARE spliced from its txs' signed bytes is still canonical"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_junk_is_refused_with_a_ledger_error(data):
    try:
        decode_message(data)
    except InvalidMessage:
        return
    pytest.fail(f"decoded junk {data!r}")


@settings(max_examples=40, deadline=None)
@given(
    votes,
    st.sampled_from(["type", "view", "height", "sender", "signature", "block_hash"]),
    st.sampled_from([1.5, -1, "x", None]),
)
def test_malformed_fields_are_refused(vote, name, bad):
    wire = decode(encode_message(vote))
    if (name == "type" and bad == "x") or (name == "sender" and bad == "x"):
        bad = 7
    wire[name] = bad
    with pytest.raises(InvalidMessage):
        decode_message(msgpack.packb(wire, use_bin_type=True))


def test_commit_signature_is_the_certificate_signature():
    commit = sign_message(Commit(CHAIN, 3, 9, b"h" * 32, "node-2"), NETWORK.keys["node-2"])
    assert is_valid_signature(
        NETWORK.keys["node-2"].public, commit_sign_bytes(CHAIN, 9, 3, b"h" * 32), commit.signature
    )


@settings(max_examples=25, deadline=None)
@given(st.one_of(pre_prepares.filter(lambda m: m.sender == "node-0" and m.view % 4 == 0), votes, checkpoints))
def test_checker_accepts_good_and_refuses_tampered_foreign_or_unknown(message):
    checker = MessageChecker(GENESIS)
    checker.verify(message)
    with pytest.raises(InvalidMessage):
        checker.verify(dataclasses.replace(message, signature=bytes(64)))
    with pytest.raises(InvalidMessage):
        checker.verify(sign_message(dataclasses.replace(message, chain_id="other-chain"), NETWORK.keys[message.sender]))
    stranger = PrivateKey.from_seed_text("stranger")
    with pytest.raises(InvalidMessage):
        checker.verify(sign_message(dataclasses.replace(message, sender="stranger"), stranger))
    impostor = "node-1" if message.sender != "node-1" else "node-2"
    with pytest.raises(InvalidMessage):
        checker.verify(sign_message(dataclasses.replace(message, sender=impostor), NETWORK.keys[message.sender]))


def test_pre_prepare_from_a_backup_is_refused():
    block = APP.make_block(1, 0, [])
    with pytest.raises(InvalidMessage):
        MessageChecker(GENESIS).verify(_sign(PrePrepare(CHAIN, 0, 1, block, "node-1")))
