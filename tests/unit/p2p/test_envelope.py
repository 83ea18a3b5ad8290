"""Envelopes: seal/open round trip, and every refusal reason dropped and counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.genesis import ConsensusParams
from ledger.keys import PrivateKey
from p2p.envelope import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    EnvelopeGate,
    ReplayWindow,
    SeqCounter,
    compute_max_envelope_bytes,
    decode_envelope,
    seal,
)
from p2p.errors import Dropped
from tests.helpers.builders import make_network

NET = make_network(4)
KEYS = NET.keys
GENESIS = NET.genesis
CHAIN = GENESIS.chain_id
HOME = "node-0"
"""The node whose gate the tests open envelopes with."""


def sealed(
    sender: str,
    seq: int,
    kind: str = "txs",
    body: bytes = b"b",
    *,
    key: PrivateKey | None = None,
    chain: str = CHAIN,
    recipient: str = HOME,
) -> bytes:
    """An envelope from `sender` to `recipient`, signed with `key` (the sender's own unless told)."""
    return seal(key or KEYS[sender], sender=sender, recipient=recipient, chain_id=chain, seq=seq, kind=kind, body=body)


def refused(gate: EnvelopeGate, data: bytes) -> str:
    with pytest.raises(Dropped) as info:
        gate.open(data)
    return info.value.reason


@settings(max_examples=60, deadline=None)
@given(
    sender=st.sampled_from(GENESIS.validator_ids()),
    seq=st.integers(min_value=0, max_value=2**62),
    kind=st.text(max_size=20),
    body=st.binary(max_size=2000),
)
def test_seal_open_round_trip(sender: str, seq: int, kind: str, body: bytes) -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    envelope = gate.open(sealed(sender, seq, kind, body))
    assert (envelope.sender, envelope.recipient, envelope.chain_id, envelope.seq, envelope.kind, envelope.body) == (
        sender,
        HOME,
        CHAIN,
        seq,
        kind,
        body,
    )
    assert gate.accepted == 1 and sum(gate.dropped.values()) == 0


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=1, max_size=300), flip=st.integers(min_value=0))
def test_any_flipped_byte_is_refused(body: bytes, flip: int) -> None:
    data = bytearray(sealed("node-1", 7, "txs", body))
    position = flip % len(data)
    data[position] ^= 0x01
    gate = EnvelopeGate(GENESIS, HOME)
    with pytest.raises(Dropped):
        gate.open(bytes(data))
    assert gate.accepted == 0 and sum(gate.dropped.values()) == 1


def test_oversized_is_counted() -> None:
    gate = EnvelopeGate(GENESIS, HOME, max_bytes=1000)
    assert refused(gate, sealed("node-1", 1, "txs", b"x" * 2000)) == "oversized"
    assert gate.dropped["oversized"] == 1


@pytest.mark.parametrize(
    "data",
    [b"\xc1", b"", encode([1, 2]), encode({"sender": "node-1"}), b"\x92\x01"],
)
def test_not_an_envelope_is_malformed(data: bytes) -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    assert refused(gate, data) == "malformed"
    assert gate.dropped["malformed"] == 1


def test_field_of_wrong_type_is_malformed() -> None:
    good = decode_envelope(sealed("node-1", 1))
    wire = {
        "body": good.body,
        "chain_id": CHAIN,
        "kind": "txs",
        "recipient": HOME,
        "sender": "node-1",
        "seq": "1",
        "signature": b"",
    }
    assert refused(EnvelopeGate(GENESIS, HOME), encode(wire)) == "malformed"


def test_sender_outside_genesis_is_refused_even_when_self_signed() -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    stranger = make_network(5).keys["node-4"]
    assert refused(gate, sealed("node-4", 1, key=stranger)) == "unknown_sender"
    client = KEYS["channel-1"]
    assert refused(gate, sealed("channel-1", 1, key=client)) == "unknown_sender"
    assert gate.dropped["unknown_sender"] == 2


def test_other_chain_is_refused() -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    assert refused(gate, sealed("node-1", 1, chain="other-chain")) == "wrong_chain"


def test_an_envelope_addressed_to_another_node_is_refused_there_and_opens_only_where_it_was_sent() -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    for_node_2 = sealed("node-1", 1, recipient="node-2")
    assert refused(gate, for_node_2) == "wrong_recipient"
    assert gate.dropped["wrong_recipient"] == 1 and gate.get_highest() == {}
    assert EnvelopeGate(GENESIS, "node-2").open(for_node_2).recipient == "node-2"
    wire = decode(for_node_2)
    assert refused(gate, encode({**wire, "recipient": HOME})) == "bad_signature", "the recipient is signed"


def test_a_restored_window_counts_everything_up_to_the_highest_as_seen() -> None:
    before = EnvelopeGate(GENESIS, HOME, replay_window=8)
    for seq in (10, 12):
        before.open(sealed("node-1", seq))
    assert before.get_highest() == {"node-1": 12}
    after = EnvelopeGate(GENESIS, HOME, replay_window=8)
    after.restore_highest({**before.get_highest(), "node-9": 5})
    assert after.get_highest() == {"node-1": 12}, "only genesis validators are remembered"
    for seq in (12, 11, 10, 3):
        assert refused(after, sealed("node-1", seq)) == "replay"
    after.open(sealed("node-1", 13))
    after.open(sealed("node-2", 1))


def test_signature_by_another_validator_is_refused() -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    assert refused(gate, sealed("node-1", 1, key=KEYS["node-2"])) == "bad_signature"
    assert gate.dropped["bad_signature"] == 1


def test_replay_is_refused_and_a_bad_signature_does_not_burn_a_seq() -> None:
    gate = EnvelopeGate(GENESIS, HOME)
    data = sealed("node-1", 100)
    refused(gate, sealed("node-1", 101, key=KEYS["node-2"]))
    gate.open(data)
    assert refused(gate, data) == "replay"
    gate.open(sealed("node-1", 101))
    assert gate.dropped["replay"] == 1 and gate.dropped["bad_signature"] == 1 and gate.accepted == 2


def test_window_allows_reordering_but_not_too_old() -> None:
    gate = EnvelopeGate(GENESIS, HOME, replay_window=8)
    key = KEYS["node-2"]
    gate.open(sealed("node-2", 10, "k", b"", key=key))
    gate.open(sealed("node-2", 5, "k", b"", key=key))
    assert refused(gate, sealed("node-2", 5, "k", b"", key=key)) == "replay"
    assert refused(gate, sealed("node-2", 2, "k", b"", key=key)) == "replay"
    gate.open(sealed("node-2", 3, "k", b"", key=key))
    gate.open(sealed("node-2", 1000, "k", b"", key=key))
    assert refused(gate, sealed("node-2", 10, "k", b"", key=key)) == "replay"
    assert refused(gate, sealed("node-1", 1, "k", b"", key=key)) == "bad_signature"


@settings(max_examples=100, deadline=None)
@given(seqs=st.lists(st.integers(min_value=0, max_value=200), max_size=80), size=st.integers(min_value=1, max_value=64))
def test_replay_window_accepts_each_seq_at_most_once(seqs: list[int], size: int) -> None:
    window = ReplayWindow(size)
    accepted: list[int] = []
    for seq in seqs:
        if window.is_fresh(seq):
            window.accept(seq)
            accepted.append(seq)
        highest = max(accepted, default=-1)
        assert window.highest == highest
    assert len(accepted) == len(set(accepted))
    for seq in set(seqs):
        fresh_expected = seq not in accepted and seq > max(accepted) - size
        if seq not in accepted:
            assert window.is_fresh(seq) == fresh_expected
        else:
            assert not window.is_fresh(seq)


def test_seq_counter_starts_at_boot_time_and_increases() -> None:
    first = SeqCounter(clock_ms=lambda: 1_700_000_000_000)
    values = [first.next() for _ in range(3)]
    assert values == [1_700_000_000_000 * 1_000_000 + i for i in range(3)]
    after_restart = SeqCounter(clock_ms=lambda: 1_700_000_000_001)
    assert after_restart.next() > values[-1]


def test_the_envelope_limit_holds_a_new_view_of_full_blocks():
    small = make_network(4).genesis
    assert compute_max_envelope_bytes(small) == DEFAULT_MAX_ENVELOPE_BYTES
    large = make_network(13, consensus=ConsensusParams(max_block_bytes=2 * 1024 * 1024)).genesis
    assert compute_max_envelope_bytes(large) >= (large.quorum + 1) * 2 * 1024 * 1024
    assert EnvelopeGate(large, HOME).max_bytes == compute_max_envelope_bytes(large)
