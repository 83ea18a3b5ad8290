"""The peer table: what this node knows about every other validator.

Peers come from genesis (each validator's address), and a validator that
governance adds comes with the address its proposal gives; each peer's address
then follows what the peer last announced (`p2p.addresses`). For each peer the
table keeps reachability, the last chain
height the peer reported, a smoothed round-trip time, messages and bytes in
and out, errors with the last one, messages dropped from its send queue, and
whether sync has marked it bad (with the reason: it served a forged block or a
bad certificate). A mark lasts a cooldown, after which the peer is tried
again: whatever it serves is verified anyway, and a node whose own apply
step refused a good block must not shun its peers forever. `snapshot()` is the JSON-ready view behind `GET /v1/peers`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field

from ledger.genesis import Genesis

RTT_SMOOTHING = 0.2
"""Weight of a new round-trip sample in the smoothed `rtt_ms`."""

DEFAULT_BAD_PEER_COOLDOWN_S = 300.0
"""How long sync ignores a peer after marking it bad; it is then tried (and verified) again."""


@dataclass
class PeerInfo:
    """What this node knows about one peer."""

    id: str
    """Validator id."""
    address: str
    """Base URL of the peer's node server."""
    reachable: bool | None = None
    """True after a successful exchange, False after a failure, None before any."""
    last_height_seen: int = 0
    """Highest committed height the peer has reported."""
    rtt_ms: float | None = None
    """Smoothed round-trip time of requests to the peer."""
    msgs_in: int = 0
    """Envelopes received from the peer that passed the gate."""
    bytes_in: int = 0
    msgs_out: int = 0
    """Envelopes delivered to the peer."""
    bytes_out: int = 0
    errors: int = 0
    """Failed exchanges (timeouts, refused connections, error statuses)."""
    last_error: str = ""
    queue_dropped: int = 0
    """Outgoing envelopes dropped because the peer's send queue was full or retries ran out."""
    marked_bad: str = ""
    """Why sync stopped trusting this peer; empty while it is trusted."""
    marked_at: float = field(default=0.0, repr=False)
    """Monotonic time of the mark (not shown in snapshots)."""
    announced_seq: int = 0
    """Sequence number of the peer's signed address record in force (0: its address in genesis)."""
    announced_seen_ms: int = 0
    """Wall time (ms) that record was last seen (0: never)."""


class PeerTable:
    """Per-peer counters and state, keyed by validator id."""

    def __init__(self, addresses: Mapping[str, str], bad_peer_cooldown_s: float = DEFAULT_BAD_PEER_COOLDOWN_S) -> None:
        self._peers = {peer_id: PeerInfo(peer_id, address) for peer_id, address in addresses.items()}
        self.bad_peer_cooldown_s = bad_peer_cooldown_s

    @classmethod
    def from_genesis(cls, genesis: Genesis, self_id: str, overrides: Mapping[str, str] | None = None) -> PeerTable:
        """Every genesis validator except `self_id`, at its genesis address unless `overrides` names another."""
        overrides = overrides or {}
        return cls({v.id: overrides.get(v.id, v.address) for v in genesis.validators if v.id != self_id})

    def add(self, peer_id: str, address: str) -> None:
        """Know a new peer (a validator added by governance) at `address`."""
        if peer_id not in self._peers:
            self._peers[peer_id] = PeerInfo(peer_id, address)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._peers

    def __iter__(self) -> Iterator[PeerInfo]:
        return iter(self._peers.values())

    def __len__(self) -> int:
        return len(self._peers)

    def get(self, peer_id: str) -> PeerInfo:
        return self._peers[peer_id]

    def ids(self) -> list[str]:
        return list(self._peers)

    def set_address(self, peer_id: str, address: str, seq: int, seen_ms: int) -> None:
        """The peer announced (in a record it signed, numbered `seq`) that it is reached at `address`."""
        peer = self._peers[peer_id]
        peer.address = address
        peer.announced_seq = seq
        peer.announced_seen_ms = seen_ms

    def record_sent(self, peer_id: str, msgs: int, nbytes: int, rtt_ms: float) -> None:
        """A batch of `msgs` envelopes reached the peer."""
        peer = self._peers[peer_id]
        peer.msgs_out += msgs
        peer.bytes_out += nbytes
        self.record_success(peer_id, rtt_ms)

    def record_success(self, peer_id: str, rtt_ms: float) -> None:
        """A request to the peer succeeded in `rtt_ms`."""
        peer = self._peers[peer_id]
        peer.reachable = True
        peer.rtt_ms = rtt_ms if peer.rtt_ms is None else (1 - RTT_SMOOTHING) * peer.rtt_ms + RTT_SMOOTHING * rtt_ms

    def record_received(self, peer_id: str, nbytes: int) -> None:
        """One envelope from the peer passed the gate."""
        peer = self._peers.get(peer_id)
        if peer is not None:
            peer.msgs_in += 1
            peer.bytes_in += nbytes

    def record_error(self, peer_id: str, error: str) -> None:
        peer = self._peers[peer_id]
        peer.reachable = False
        peer.errors += 1
        peer.last_error = error

    def record_queue_drop(self, peer_id: str, count: int = 1) -> None:
        self._peers[peer_id].queue_dropped += count

    def note_height(self, peer_id: str, height: int) -> None:
        """The peer reported that it has committed up to `height`."""
        peer = self._peers.get(peer_id)
        if peer is not None and height > peer.last_height_seen:
            peer.last_height_seen = height

    def mark_bad(self, peer_id: str, reason: str) -> None:
        """Stop trusting the peer for sync (it served something that failed verification)."""
        peer = self._peers[peer_id]
        peer.marked_bad = reason
        peer.marked_at = time.monotonic()

    def clear_bad(self, peer_id: str) -> None:
        self._peers[peer_id].marked_bad = ""

    def is_trusted(self, peer_id: str) -> bool:
        """Not marked bad, or marked longer than the cooldown ago (then the mark is cleared)."""
        peer = self._peers[peer_id]
        if peer.marked_bad and time.monotonic() - peer.marked_at >= self.bad_peer_cooldown_s:
            peer.marked_bad = ""
        return not peer.marked_bad

    def trusted_ids(self) -> list[str]:
        return [peer_id for peer_id in self._peers if self.is_trusted(peer_id)]

    def snapshot(self) -> list[dict[str, object]]:
        """JSON-ready list of every peer, sorted by id."""
        rows = []
        for peer_id in sorted(self._peers):
            row = asdict(self._peers[peer_id])
            del row["marked_at"]
            if row["rtt_ms"] is not None:
                row["rtt_ms"] = round(row["rtt_ms"], 2)
            rows.append(row)
        return rows
