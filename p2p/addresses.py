"""Announced addresses: where each validator says it is reached now, signed by its own key.

Genesis gives every validator's address when the network is formed; a node
moved later (another host, another port) tells the others itself. It signs
a record of its id, its address and a sequence number (the time of the
announcement in milliseconds, and never lower than any it used before), and
every node that gets it keeps the record with the highest sequence number
for each validator, after checking the signature against that validator's
key in the membership. A node announces at start and then now and again to
every peer (envelope kind `address`), passes on each record that is news to
it, and answers `GET /p2p/addresses` with what it holds, which a follower
(whose envelopes no validator opens) reads from its peers instead.

What a peer can make a node store is bounded: one record per validator of
the membership, an address of at most `MAX_ADDRESS_CHARS`, and a body of at
most as many records as there are validators. The book is saved in the
node's home, so a restarted node dials its peers where they last said they
were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ledger.encoding import decode, encode
from ledger.errors import EncodingError
from ledger.keys import PrivateKey, is_valid_signature
from p2p.envelope import Envelope
from p2p.errors import PeerUnavailable

if TYPE_CHECKING:
    from p2p.transport import Transport


class PeerReader(Protocol):
    """How a node reads a peer's route (`p2p.sync.HttpSyncSource` fits)."""

    async def get(self, peer: str, path: str) -> bytes | None:
        """The body, None on 404; raises `PeerUnavailable`."""


ANNOUNCE_KIND = "address"
"""Envelope kind of a batch of address records."""

SIGNING_DOMAIN = "oms-ledger/p2p-address"
"""Tag inside the signed bytes, so a record's signature can never pass for a vote, an envelope or a tx."""

ADDRESSES_PATH = "/p2p/addresses"
"""Route of a node's server that answers the records it holds."""

ANNOUNCE_INTERVAL_S = 15.0
"""How often a validator announces every record it holds, and every node reads one peer's book."""

MAX_ADDRESS_CHARS = 200
"""Longest address a record may carry."""

ADDRESS_PATTERN = re.compile(r"https?://([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}")
"""`http(s)://HOST:PORT`: what a record's address must look like."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddressRecord:
    """One validator's signed word on where it is reached."""

    node: str
    """The validator's id."""
    address: str
    """Its base URL."""
    seq: int
    """Newer records have higher numbers (milliseconds since the epoch at the announcement, or more)."""
    signature: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"node": self.node, "address": self.address, "seq": self.seq, "signature": self.signature}

    @classmethod
    def from_wire(cls, wire: object) -> AddressRecord | None:
        """The record of a decoded map, or None if it has not a record's shape."""
        if not isinstance(wire, dict) or set(wire) != {"node", "address", "seq", "signature"}:
            return None
        node, address, seq, signature = wire["node"], wire["address"], wire["seq"], wire["signature"]
        if not (isinstance(node, str) and isinstance(address, str) and isinstance(signature, bytes)):
            return None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            return None
        return cls(node, address, seq, signature)


def compute_signing_bytes(chain_id: str, node: str, address: str, seq: int) -> bytes:
    return encode({"domain": SIGNING_DOMAIN, "chain_id": chain_id, "node": node, "address": address, "seq": seq})


def is_valid_address(address: str) -> bool:
    return len(address) <= MAX_ADDRESS_CHARS and ADDRESS_PATTERN.fullmatch(address) is not None


@dataclass
class Entry:
    """The newest record held for one validator and when it was last seen."""

    record: AddressRecord
    seen_ms: int
    """Wall time (ms) this record was last received, or made here."""


class AddressBook:
    """The newest verified address record of each validator of the membership."""

    def __init__(self, chain_id: str, keys: Mapping[str, bytes], path: Path | None = None) -> None:
        """`keys`: the validators' public keys by id (the membership); `path`: where the book is kept."""
        self.chain_id = chain_id
        self.keys = dict(keys)
        self.path = path
        self.entries: dict[str, Entry] = {}
        self.refused = 0
        """Records refused: not a validator, bad address, bad signature, or not a record at all."""

    def set_members(self, keys: Mapping[str, bytes]) -> None:
        """Take records from these validators, checked with these keys, from now on (the membership changed);
        the records of validators no longer listed are dropped."""
        self.keys = dict(keys)
        self.entries = {node: entry for node, entry in self.entries.items() if node in self.keys}

    def announce(self, key: PrivateKey, node: str, address: str, now_ms: int) -> AddressRecord:
        """Sign and hold this node's own record, newer than any it held before."""
        held = self.entries.get(node)
        seq = max(now_ms, held.record.seq + 1 if held else 0)
        record = AddressRecord(node, address, seq, key.sign(compute_signing_bytes(self.chain_id, node, address, seq)))
        self.entries[node] = Entry(record, now_ms)
        return record

    def offer(self, record: AddressRecord, now_ms: int) -> bool:
        """Hold `record` if it is a member's, well-formed, well-signed and newer than the one held; answer
        whether it was news (an equal one only refreshes when it was seen)."""
        key = self.keys.get(record.node)
        held = self.entries.get(record.node)
        if held is not None and record.seq < held.record.seq:
            return False
        if held is not None and record == held.record:
            held.seen_ms = now_ms
            return False
        signed = compute_signing_bytes(self.chain_id, record.node, record.address, record.seq)
        if key is None or not is_valid_address(record.address) or not is_valid_signature(key, signed, record.signature):
            self.refused += 1
            return False
        self.entries[record.node] = Entry(record, now_ms)
        return True

    def address_of(self, node: str) -> str | None:
        entry = self.entries.get(node)
        return entry.record.address if entry else None

    def encode_records(self) -> bytes:
        """Every record held, as the body of an announcement or of `GET /p2p/addresses`."""
        return encode([entry.record.to_wire() for _, entry in sorted(self.entries.items())])

    def decode_records(self, body: bytes) -> list[AddressRecord]:
        """The records of a received body; more than one per validator, or anything else, gives none."""
        try:
            items = decode(body)
        except EncodingError:
            items = None
        if not isinstance(items, list) or len(items) > len(self.keys):
            self.refused += 1
            return []
        records = [AddressRecord.from_wire(item) for item in items]
        self.refused += sum(record is None for record in records)
        return [record for record in records if record is not None]

    def save(self) -> None:
        """Keep the book in its file (written aside, then moved in place)."""
        if self.path is None:
            return
        wire = [
            {**entry.record.to_wire(), "signature": entry.record.signature.hex(), "seen_ms": entry.seen_ms}
            for _, entry in sorted(self.entries.items())
        ]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(wire, indent=1) + "\n")
        os.replace(temporary, self.path)

    def load(self) -> None:
        """Take in the records of the book's file that still check out (a damaged file is ignored)."""
        if self.path is None or not self.path.exists():
            return
        try:
            wire = json.loads(self.path.read_text())
            items = [(dict(item, signature=bytes.fromhex(item["signature"])), item["seen_ms"]) for item in wire]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)
            return
        for item, seen_ms in items[: len(self.keys)]:
            item.pop("seen_ms", None)
            record = AddressRecord.from_wire(item)
            if record is not None and isinstance(seen_ms, int):
                self.offer(record, seen_ms)


class AddressGossip:
    """Announces this node's address, takes in and passes on the others', and keeps the peer table pointed at
    the newest address of each peer."""

    def __init__(
        self,
        book: AddressBook,
        transport: Transport,
        source: PeerReader,
        clock: Callable[[], int],
        announce: tuple[PrivateKey, str] | None,
        interval_s: float = ANNOUNCE_INTERVAL_S,
    ) -> None:
        """`announce`: this node's key and advertised address, if it is a validator (a follower only reads);
        `clock`: wall time in milliseconds."""
        self.book = book
        self.transport = transport
        self.source = source
        self.clock = clock
        self.interval_s = interval_s
        self.own = announce
        """This node's key and the address it announces (a validator's); None on a follower."""
        self.next_peer = 0
        transport.register(ANNOUNCE_KIND, self.on_envelope)
        self._point_peers()

    def start(self) -> None:
        """Announce this node's address (a validator's) to every peer."""
        if self.own is not None:
            key, address = self.own
            self.book.announce(key, self.transport.node_id, address, self.clock())
            self.book.save()
            self.transport.broadcast(ANNOUNCE_KIND, self.book.encode_records())

    async def on_envelope(self, envelope: Envelope) -> None:
        """Records from a peer: hold the news and pass it on."""
        self.take(envelope.body, forward=True)

    def take(self, body: bytes, forward: bool) -> int:
        """Hold the records of `body` that are news; `forward` passes them on to every peer. Answers how many."""
        now = self.clock()
        news = [record for record in self.book.decode_records(body) if self.book.offer(record, now)]
        if any(record.node == self.transport.node_id for record in news):
            # an old record of this node outnumbers the one it made at start (its book was lost, its clock
            # went back): it signs its address again, numbered above that one
            self.start()
        if news:
            self._point_peers()
            self.book.save()
            for record in news:
                log.info("%s announced its address %s (seq %d)", record.node, record.address, record.seq)
            if forward:
                self.transport.broadcast(ANNOUNCE_KIND, encode([record.to_wire() for record in news]))
        return len(news)

    def _point_peers(self) -> None:
        for node, entry in self.book.entries.items():
            if node in self.transport.peers:
                self.transport.peers.set_address(node, entry.record.address, entry.record.seq, entry.seen_ms)

    async def run(self) -> None:
        """Every `interval_s`: announce every record held (a validator), and read one peer's book in turn."""
        while True:
            await asyncio.sleep(self.interval_s)
            if self.own is not None:
                self.transport.broadcast(ANNOUNCE_KIND, self.book.encode_records())
            ids = self.transport.peers.ids()
            if not ids:
                continue
            peer = ids[self.next_peer % len(ids)]
            self.next_peer += 1
            try:
                body = await self.source.get(peer, ADDRESSES_PATH)
            except PeerUnavailable:
                continue
            if body is not None:
                self.take(body, forward=False)
