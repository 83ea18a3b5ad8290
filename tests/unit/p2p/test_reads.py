"""Sealed reads: a member node's seal opens for its own request once; anything else is refused with a reason."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.keys import PrivateKey
from p2p.envelope import Sealer
from p2p.errors import Dropped
from p2p.reads import MAX_READ_SKEW_MS, SEAL_HEADER, ReadGate, ReadSealer, encode_query, is_forbidden
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
HOME = "node-0"
"""The node whose gate opens the seals."""
NOW_MS = 1_800_000_000_000


def sealer(sender: str = "node-1", key: PrivateKey | None = None, at_ms: int = NOW_MS) -> ReadSealer:
    return ReadSealer(Sealer(key or NET.keys[sender], sender, GENESIS.chain_id), lambda: at_ms)


def gate() -> ReadGate:
    read_gate = ReadGate(GENESIS, HOME, lambda: NOW_MS)
    read_gate.set_readers({v: frozenset({NET.keys[v].public}) for v in GENESIS.validator_ids()})
    return read_gate


def seal_of(read_sealer: ReadSealer, path: str = "/p2p/blocks", params: dict[str, int] | None = None) -> str:
    return read_sealer.headers(HOME, path, params)[SEAL_HEADER]


def refusal(read_gate: ReadGate, seal: str | None, path: str = "/p2p/blocks", query: str = "") -> Dropped:
    params = [tuple(part.split("=")) for part in query.split("&") if part]
    with pytest.raises(Dropped) as info:
        read_gate.open(seal, path, params)
    return info.value


def test_a_member_nodes_seal_opens_for_its_own_request_and_names_it():
    read_gate = gate()
    seal = seal_of(sealer(), "/p2p/blocks", {"to": 9, "from": 1})
    assert read_gate.open(seal, "/p2p/blocks", [("from", "1"), ("to", "9")]) == "node-1"


def test_the_same_seal_opens_once():
    read_gate = gate()
    seal = seal_of(sealer())
    read_gate.open(seal, "/p2p/blocks", [])
    assert refusal(read_gate, seal).reason == "replay"


def test_concurrent_reads_of_one_node_may_arrive_out_of_order():
    read_gate, reader = gate(), sealer()
    first, second = seal_of(reader, "/p2p/status"), seal_of(reader, "/p2p/status")
    assert read_gate.open(second, "/p2p/status", []) == read_gate.open(first, "/p2p/status", []) == "node-1"


def test_no_seal_is_unauthenticated():
    exc = refusal(gate(), None)
    assert exc.reason == "unsealed" and not is_forbidden(exc)


def test_a_stranger_naming_itself_is_forbidden_and_one_naming_a_member_is_unauthenticated():
    stranger = PrivateKey.generate()
    unknown = refusal(gate(), seal_of(sealer("outsider", stranger)))
    assert unknown.reason == "unknown_sender" and is_forbidden(unknown)
    impostor = refusal(gate(), seal_of(sealer("node-2", stranger)))
    assert impostor.reason == "bad_signature" and not is_forbidden(impostor)


def test_a_client_identity_without_the_node_role_is_no_reader():
    client = GENESIS.clients[0]
    exc = refusal(gate(), seal_of(sealer(client.id, NET.keys[client.id])))
    assert exc.reason == "unknown_sender"


def test_a_reader_added_later_is_served_and_one_removed_is_not():
    read_gate, follower = gate(), PrivateKey.generate()
    read_gate.set_readers({"till": frozenset({follower.public})})
    assert read_gate.open(seal_of(sealer("till", follower)), "/p2p/blocks", []) == "till"
    assert refusal(read_gate, seal_of(sealer("node-1"))).reason == "unknown_sender"


def test_a_seal_for_another_path_query_or_node_is_refused():
    read_gate, reader = gate(), sealer()
    assert refusal(read_gate, seal_of(reader, "/p2p/status"), "/p2p/blocks").reason == "wrong_request"
    blocks = seal_of(reader, "/p2p/blocks", {"from": 1, "to": 2})
    assert refusal(read_gate, blocks, "/p2p/blocks", "from=1&to=900").reason == "wrong_request"
    elsewhere = reader.headers("node-3", "/p2p/blocks")[SEAL_HEADER]
    assert refusal(read_gate, elsewhere).reason == "wrong_recipient"


@pytest.mark.parametrize("offset_ms", [MAX_READ_SKEW_MS + 1, -MAX_READ_SKEW_MS - 1])
def test_a_seal_too_far_from_the_clock_is_stale(offset_ms: int):
    assert refusal(gate(), seal_of(sealer(at_ms=NOW_MS + offset_ms))).reason == "stale"


def test_a_write_envelope_is_no_read_seal():
    sealed = Sealer(NET.keys["node-1"], "node-1", GENESIS.chain_id).seal(HOME, "txs", b"")
    exc = refusal(gate(), base64.b64encode(sealed).decode())
    assert exc.reason == "wrong_request"


@settings(max_examples=100, deadline=None)
@given(junk=st.text(max_size=10_000))
def test_any_header_value_is_refused_with_a_reason_and_counted(junk: str):
    read_gate = gate()
    exc = refusal(read_gate, junk or "x")
    assert read_gate.gate.dropped[exc.reason] == 1


def test_the_query_a_seal_binds_does_not_depend_on_parameter_order():
    assert encode_query([("to", 2), ("from", 1)]) == encode_query({"from": "1", "to": "2"}.items()) == "from=1&to=2"
