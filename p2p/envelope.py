"""Signed envelopes: the only unit that travels between nodes.

Every message a node sends (a consensus vote, a batch of txs) is wrapped in an
envelope naming the sending validator, the validator it is addressed to, the
chain, a per-sender sequence number and the message kind, and signed with the
sender's validator key over the canonical encoding of those fields and the
body (a broadcast is sealed once per recipient). The receiving side opens it
through an `EnvelopeGate`, which refuses, and counts by reason, anything
oversized, not msgpack, from a key outside the validator sets in force (the
genesis set until governance changes it: `set_senders`), for another chain,
addressed to another node, badly signed, or replayed. A refused envelope is
never acted on, and an envelope one node accepted is worth nothing to any
other.

Replay protection is a sliding window per sender (as in IPsec): the gate keeps
the highest sequence number seen and a bitmap of the `window` numbers below
it, so envelopes may arrive reordered by up to `window` positions but never
twice. Sequence numbers start at boot time in milliseconds times 1,000,000
(`SeqCounter`), so a restarted node never reuses one. The highest number
accepted from each sender (`EnvelopeGate.get_highest`) is what a restarted
receiver must remember (`p2p.windows` keeps it on disk): restored with
`restore_highest`, everything up to it counts as seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ledger.encoding import decode, encode
from ledger.errors import EncodingError
from ledger.genesis import Genesis
from ledger.keys import PrivateKey, is_valid_signature
from p2p.budget import SenderBudget
from p2p.errors import Dropped

DEFAULT_MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
"""Largest encoded envelope a gate accepts by default (a full block proposal fits)."""

DEFAULT_REPLAY_WINDOW = 4096
"""How far below the highest sequence number seen an envelope may still arrive."""

SIGNING_DOMAIN = "oms-ledger/p2p-envelope"
"""Tag inside the signed bytes, so an envelope signature can never pass for a commit vote or a tx."""

SEQ_PER_MS = 1_000_000
"""Sequence numbers one node may use per millisecond of boot time before a restart could reuse one."""

DROP_REASONS = (
    "oversized",
    "malformed",
    "unknown_sender",
    "wrong_chain",
    "wrong_recipient",
    "bad_signature",
    "replay",
    "unknown_kind",
    "rate_limited",
    "over_budget",
)
"""Every reason an incoming envelope is dropped for; each is a key of `EnvelopeGate.dropped`."""

_FIELDS = {
    "body": bytes,
    "chain_id": str,
    "kind": str,
    "recipient": str,
    "sender": str,
    "seq": int,
    "signature": bytes,
}


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """One signed message from a validator."""

    sender: str
    """Validator id of the sender, from genesis."""
    recipient: str
    """Validator id of the node it is addressed to: any other node refuses it."""
    chain_id: str
    """Chain the message belongs to."""
    seq: int
    """Per-sender, strictly increasing sequence number (replay protection)."""
    kind: str
    """What the body is: `consensus`, `txs`, ..."""
    body: bytes
    """Opaque payload, msgpack by convention."""
    signature: bytes
    """Ed25519 signature by the sender's validator key over `compute_signing_bytes`."""


def compute_signing_bytes(envelope: Envelope) -> bytes:
    """The bytes an envelope's signature covers: every field but the signature, and the domain tag."""
    return encode(
        {
            "body": envelope.body,
            "chain_id": envelope.chain_id,
            "domain": SIGNING_DOMAIN,
            "kind": envelope.kind,
            "recipient": envelope.recipient,
            "sender": envelope.sender,
            "seq": envelope.seq,
        }
    )


def encode_envelope(envelope: Envelope) -> bytes:
    return encode(
        {
            "body": envelope.body,
            "chain_id": envelope.chain_id,
            "kind": envelope.kind,
            "recipient": envelope.recipient,
            "sender": envelope.sender,
            "seq": envelope.seq,
            "signature": envelope.signature,
        }
    )


def seal(key: PrivateKey, *, sender: str, recipient: str, chain_id: str, seq: int, kind: str, body: bytes) -> bytes:
    """Sign a message for one recipient with the sender's key and return the encoded envelope, ready to send."""
    unsigned = Envelope(
        sender=sender, recipient=recipient, chain_id=chain_id, seq=seq, kind=kind, body=body, signature=b""
    )
    return encode_envelope(replace(unsigned, signature=key.sign(compute_signing_bytes(unsigned))))


def decode_envelope(data: bytes) -> Envelope:
    """Decode an envelope's shape without checking it; raises `Dropped("malformed")`."""
    try:
        wire: Any = decode(data)
    except EncodingError as exc:
        raise Dropped("malformed", str(exc)) from exc
    if not isinstance(wire, dict) or set(wire) != set(_FIELDS):
        raise Dropped("malformed", "an envelope is a map of exactly " + ", ".join(sorted(_FIELDS)))
    for name, kind in _FIELDS.items():
        if type(wire[name]) is not kind:
            raise Dropped("malformed", f"envelope field {name!r} must be {kind.__name__}")
    return Envelope(**wire)


class SeqCounter:
    """Hands out a node's envelope sequence numbers: boot time in ms * 1,000,000, then +1 each."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        now_ms = clock_ms() if clock_ms is not None else time.time_ns() // 1_000_000
        self._next = now_ms * SEQ_PER_MS

    def next(self) -> int:
        value = self._next
        self._next += 1
        return value


class Sealer:
    """Seals this node's outgoing envelopes: its key, id and chain, and its sequence numbers (one for each
    envelope, so a broadcast is sealed once per peer, each for that peer alone)."""

    def __init__(self, key: PrivateKey, sender: str, chain_id: str, seq: SeqCounter | None = None) -> None:
        self.key = key
        self.sender = sender
        self.chain_id = chain_id
        self.seq = seq or SeqCounter()

    def seal(self, recipient: str, kind: str, body: bytes) -> bytes:
        """An envelope of `kind` for `recipient` alone, with the next sequence number."""
        return seal(
            self.key,
            sender=self.sender,
            recipient=recipient,
            chain_id=self.chain_id,
            seq=self.seq.next(),
            kind=kind,
            body=body,
        )


class ReplayWindow:
    """Highest sequence number seen from one sender and a bitmap of the `size` numbers below it."""

    __slots__ = ("highest", "seen", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.highest = -1
        """Highest sequence number accepted so far (-1 before the first)."""
        self.seen = 0
        """Bit i set: `highest - i` was accepted."""

    def is_fresh(self, seq: int) -> bool:
        """Would `seq` be accepted (new, and not too old)?"""
        if seq > self.highest:
            return True
        offset = self.highest - seq
        return offset < self.size and not (self.seen >> offset) & 1

    def mark_seen_through(self, highest: int) -> None:
        """Count every number up to `highest` as seen (a window restored after a restart)."""
        if highest > self.highest:
            self.highest = highest
            self.seen = (1 << self.size) - 1

    def accept(self, seq: int) -> None:
        """Record `seq` as seen; call only after `is_fresh(seq)`."""
        if seq > self.highest:
            shift = seq - self.highest
            self.seen = ((self.seen << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.highest = seq
        else:
            self.seen |= 1 << (self.highest - seq)


def compute_max_envelope_bytes(genesis: Genesis) -> int:
    """The envelope limit a chain needs: the default, or room for a NEW-VIEW that carries a full block in each
    of its 2f+1 view changes and its re-proposal (plus 1 MiB of signatures and framing), if that is more."""
    carried = (genesis.quorum + 1) * genesis.consensus.max_block_bytes + 1024 * 1024
    return max(DEFAULT_MAX_ENVELOPE_BYTES, carried)


class EnvelopeGate:
    """The receiving side's checks; `open` returns a trusted envelope or raises `Dropped`."""

    def __init__(
        self,
        genesis: Genesis,
        node_id: str,
        *,
        max_bytes: int | None = None,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        budget: SenderBudget | None = None,
    ) -> None:
        """`budget`: what each validator may send in sealed envelopes (`p2p.budget`); None sets no limit."""
        self.chain_id = genesis.chain_id
        self.node_id = node_id
        """The validator this gate opens envelopes for: the only recipient it accepts."""
        self.max_bytes = compute_max_envelope_bytes(genesis) if max_bytes is None else max_bytes
        self.replay_window = replay_window
        self._keys: dict[str, frozenset[bytes]] = {v: frozenset({k}) for v, k in genesis.validator_keys().items()}
        """The keys each sender may sign with (two while a validator's key rotation is under way)."""
        self._windows: dict[str, ReplayWindow] = {}
        self.budget = budget
        self.accepted = 0
        """Envelopes that passed every check."""
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        """Envelopes refused, by reason."""

    def set_senders(self, keys: Mapping[str, frozenset[bytes]]) -> None:
        """Accept envelopes from these validators with these keys from now on (the validator set changed)."""
        self._keys = dict(keys)

    def get_highest(self) -> dict[str, int]:
        """The highest sequence number accepted from each sender so far, by sender."""
        return {sender: window.highest for sender, window in sorted(self._windows.items())}

    def restore_highest(self, highest: dict[str, int]) -> None:
        """Count every sequence number up to `highest[sender]` as seen, for the known validators named (what
        a restarted node remembers of its windows)."""
        for sender, seq in highest.items():
            if sender in self._keys:
                self._get_window(sender).mark_seen_through(seq)

    def _get_window(self, sender: str) -> ReplayWindow:
        window = self._windows.get(sender)
        if window is None:
            window = self._windows[sender] = ReplayWindow(self.replay_window)
        return window

    def count_drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def open(self, data: bytes) -> Envelope:
        """Check one encoded envelope; raise `Dropped(reason)` (and count it) unless every check passes."""
        try:
            envelope = self._check(data)
        except Dropped as exc:
            self.count_drop(exc.reason)
            raise
        self.accepted += 1
        return envelope

    def _check(self, data: bytes) -> Envelope:
        if len(data) > self.max_bytes:
            raise Dropped("oversized", f"{len(data)} bytes, limit {self.max_bytes}")
        envelope = decode_envelope(data)
        keys = self._keys.get(envelope.sender)
        if keys is None:
            raise Dropped("unknown_sender", f"{envelope.sender!r} is not a validator")
        if envelope.chain_id != self.chain_id:
            raise Dropped("wrong_chain", f"chain {envelope.chain_id!r}, expected {self.chain_id!r}")
        if envelope.recipient != self.node_id:
            raise Dropped("wrong_recipient", f"addressed to {envelope.recipient!r}, this is {self.node_id!r}")
        window = self._windows.get(envelope.sender)
        if window is not None and not window.is_fresh(envelope.seq):
            raise Dropped("replay", f"seq {envelope.seq} from {envelope.sender!r} already seen or too old")
        if self.budget is not None and not self.budget.allows(envelope.sender):
            raise Dropped("over_budget", f"{envelope.sender!r} has spent its budget of sealed traffic")
        signing_bytes = compute_signing_bytes(envelope)
        if not any(is_valid_signature(key, signing_bytes, envelope.signature) for key in keys):
            raise Dropped("bad_signature", f"envelope from {envelope.sender!r} does not verify")
        self._get_window(envelope.sender).accept(envelope.seq)
        if self.budget is not None:
            self.budget.charge(envelope.sender, len(data))
        return envelope
