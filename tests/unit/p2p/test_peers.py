"""The peer table: counters, smoothed round trips, bad marks with a cooldown, and the JSON snapshot."""

from __future__ import annotations

import json

from p2p.peers import PeerTable
from tests.helpers.builders import make_network

GENESIS = make_network(4).genesis


def test_from_genesis_lists_every_other_validator_with_overrides() -> None:
    table = PeerTable.from_genesis(GENESIS, "node-1", {"node-2": "http://10.0.0.2:26600"})
    assert table.ids() == ["node-0", "node-2", "node-3"] and "node-1" not in table
    assert table.get("node-2").address == "http://10.0.0.2:26600"
    assert table.get("node-0").address == GENESIS.validators[0].address


def test_counters_and_rtt_smoothing() -> None:
    table = PeerTable({"p": "http://p"})
    table.record_sent("p", 3, 300, 10.0)
    table.record_sent("p", 1, 100, 20.0)
    table.record_received("p", 50)
    table.record_received("stranger", 50)
    table.note_height("p", 9)
    table.note_height("p", 4)
    peer = table.get("p")
    assert (peer.msgs_out, peer.bytes_out, peer.msgs_in, peer.bytes_in) == (4, 400, 1, 50)
    assert peer.rtt_ms == 12.0 and peer.last_height_seen == 9 and peer.reachable is True
    table.record_error("p", "ConnectError: refused")
    assert peer.reachable is False and peer.errors == 1 and peer.last_error == "ConnectError: refused"


def test_bad_mark_lasts_the_cooldown() -> None:
    table = PeerTable({"p": "http://p", "q": "http://q"}, bad_peer_cooldown_s=3600)
    table.mark_bad("p", "forged block 31")
    assert not table.is_trusted("p") and table.trusted_ids() == ["q"]
    table.bad_peer_cooldown_s = 0
    assert table.is_trusted("p") and table.get("p").marked_bad == ""


def test_snapshot_is_json_ready_and_sorted() -> None:
    table = PeerTable({"b": "http://b", "a": "http://a"})
    table.record_sent("a", 1, 10, 1.23456)
    table.mark_bad("b", "bad certificate")
    rows = json.loads(json.dumps(table.snapshot()))
    assert [row["id"] for row in rows] == ["a", "b"]
    assert rows[0]["rtt_ms"] == 1.23 and rows[1]["marked_bad"] == "bad certificate"
    assert "marked_at" not in rows[0] and rows[1]["reachable"] is None
