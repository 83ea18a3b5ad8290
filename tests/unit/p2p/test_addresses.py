"""Announced addresses: newest signed record wins, forgeries and floods are refused, news spreads to every peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import encode
from ledger.keys import PrivateKey
from p2p.addresses import ADDRESSES_PATH, MAX_ADDRESS_CHARS, AddressBook, AddressGossip, AddressRecord
from p2p.errors import PeerUnavailable
from p2p.memory import MemoryNetwork
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
KEYS = GENESIS.validator_keys()


def new_book(path: Path | None = None) -> AddressBook:
    return AddressBook(GENESIS.chain_id, KEYS, path)


def test_the_newest_well_signed_record_of_a_member_wins() -> None:
    mine, theirs = new_book(), new_book()
    old = mine.announce(NET.keys["node-1"], "node-1", "http://10.0.0.1:26600", now_ms=1_000)
    new = mine.announce(NET.keys["node-1"], "node-1", "http://10.0.0.9:27000", now_ms=500)
    assert new.seq == old.seq + 1, "a clock that went back still gives a newer number"
    assert theirs.offer(new, now_ms=2_000)
    assert not theirs.offer(old, now_ms=2_001)
    assert theirs.address_of("node-1") == "http://10.0.0.9:27000"
    assert not theirs.offer(new, now_ms=3_000)
    assert theirs.entries["node-1"].seen_ms == 3_000, "seeing the same record again refreshes when it was seen"


def test_forged_foreign_and_malformed_records_are_refused() -> None:
    book = new_book()
    forged = new_book().announce(NET.keys["node-2"], "node-1", "http://evil:1", now_ms=5)
    stranger = AddressBook(GENESIS.chain_id, {"x": PrivateKey.from_seed_text("x").public})
    outsider = stranger.announce(PrivateKey.from_seed_text("x"), "x", "http://evil:1", now_ms=5)
    other_chain = AddressBook("other", KEYS).announce(NET.keys["node-1"], "node-1", "http://evil:1", now_ms=5)
    long_address = "http://" + "a" * MAX_ADDRESS_CHARS + ":1"
    too_long = new_book().announce(NET.keys["node-1"], "node-1", long_address, now_ms=5)
    not_url = new_book().announce(NET.keys["node-1"], "node-1", "ftp://h:1", now_ms=5)
    for record in (forged, outsider, other_chain, too_long, not_url):
        assert not book.offer(record, now_ms=10)
    assert book.entries == {} and book.refused == 5


def test_a_body_holds_at_most_one_record_per_member() -> None:
    book = new_book()
    record = new_book().announce(NET.keys["node-1"], "node-1", "http://h:1", now_ms=5)
    assert book.decode_records(encode([record.to_wire()] * len(KEYS))) == [record] * len(KEYS)
    assert book.decode_records(encode([record.to_wire()] * (len(KEYS) + 1))) == []


FIELD_VALUES = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=20), st.binary(max_size=70), st.none())
RECORD_LIKE = st.fixed_dictionaries(
    {}, optional={name: FIELD_VALUES for name in ("node", "address", "seq", "signature", "extra")}
)


@given(st.binary(max_size=300) | st.lists(RECORD_LIKE, max_size=6).map(encode))
def test_any_body_decodes_to_records_or_nothing_without_raising(body: bytes) -> None:
    records = new_book().decode_records(body)
    assert all(isinstance(record, AddressRecord) for record in records)


def test_the_book_survives_a_restart_and_ignores_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "addresses.json"
    book = new_book(path)
    book.offer(new_book().announce(NET.keys["node-3"], "node-3", "http://h:3", now_ms=7), now_ms=8)
    book.save()
    again = new_book(path)
    again.load()
    assert again.address_of("node-3") == "http://h:3" and again.entries["node-3"].seen_ms == 8
    path.write_text("{not json")
    damaged = new_book(path)
    damaged.load()
    assert damaged.entries == {}


class Reader:
    """Reads the books of the other gossips of the test, as `GET /p2p/addresses` would."""

    def __init__(self) -> None:
        self.gossips: dict[str, AddressGossip] = {}

    async def get(self, peer: str, path: str) -> bytes | None:
        if path != ADDRESSES_PATH or peer not in self.gossips:
            raise PeerUnavailable(peer)
        return self.gossips[peer].book.encode_records()


async def moved_node_is_found_again() -> None:
    network = MemoryNetwork(GENESIS, seed=3)
    reader = Reader()
    clock = [1_000]
    gossips = {}
    for node_id in GENESIS.validator_ids():
        transport = network.transport(node_id, NET.keys[node_id])
        announce = (NET.keys[node_id], f"http://{node_id}.old:1")
        gossip = AddressGossip(new_book(), transport, reader, lambda: clock[0], announce)
        gossips[node_id] = reader.gossips[node_id] = gossip
    for gossip in gossips.values():
        await gossip.transport.start()
        gossip.start()
    await network.settle()
    assert gossips["node-0"].transport.peers.get("node-2").address == "http://node-2.old:1"

    clock[0] = 2_000
    moved = gossips["node-2"]
    moved.own = (NET.keys["node-2"], "http://node-2.new:2")
    network.set_down("node-3", True)
    moved.start()
    await network.settle()
    for node_id in ("node-0", "node-1"):
        peer = gossips[node_id].transport.peers.get("node-2")
        assert (peer.address, peer.announced_seen_ms) == ("http://node-2.new:2", 2_000)
    assert gossips["node-3"].transport.peers.get("node-2").address == "http://node-2.old:1"

    network.set_down("node-3", False)
    late = gossips["node-3"]
    late.next_peer = late.transport.peers.ids().index("node-0")
    late.interval_s = 0
    task = asyncio.create_task(late.run())
    while late.transport.peers.get("node-2").address != "http://node-2.new:2":
        await asyncio.sleep(0)
    task.cancel()
    for transport in network.nodes.values():
        await transport.close()


def test_a_moved_node_is_found_by_its_peers_and_by_one_that_missed_the_news() -> None:
    asyncio.run(asyncio.wait_for(moved_node_is_found_again(), 30))


async def a_stale_record_of_its_own_is_outnumbered() -> None:
    network = MemoryNetwork(GENESIS, seed=5)
    reader = Reader()
    old_self = new_book().announce(NET.keys["node-0"], "node-0", "http://stale:1", now_ms=9_000)
    clock = [1_000]
    gossips = {}
    for node_id in ("node-0", "node-1"):
        transport = network.transport(node_id, NET.keys[node_id])
        own = (NET.keys[node_id], f"http://{node_id}.now:1")
        gossips[node_id] = reader.gossips[node_id] = AddressGossip(new_book(), transport, reader, lambda: clock[0], own)
        await transport.start()
    gossips["node-1"].book.offer(old_self, now_ms=9_000)
    gossips["node-0"].start()
    await network.settle()
    assert gossips["node-1"].book.address_of("node-0") == "http://stale:1", "the older clock loses at first"
    gossips["node-0"].take(gossips["node-1"].book.encode_records(), forward=False)
    await network.settle()
    assert gossips["node-0"].book.entries["node-0"].record.seq > old_self.seq
    assert gossips["node-1"].book.address_of("node-0") == "http://node-0.now:1"
    for transport in network.nodes.values():
        await transport.close()


def test_a_node_whose_old_record_outnumbers_its_new_one_signs_a_newer_one() -> None:
    asyncio.run(asyncio.wait_for(a_stale_record_of_its_own_is_outnumbered(), 30))
