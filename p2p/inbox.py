"""The receiving end shared by every transport: frames in, checked envelopes out to handlers.

A frame is what one HTTP POST to `/p2p` carries: a msgpack array of encoded
envelopes (one or more, batched by the sender). The `Inbox` splits a frame,
opens each envelope through the `EnvelopeGate` (refused ones are counted and
skipped, never acted on), records it in the `PeerTable`, and awaits the
handler registered for its kind. Handlers should be quick (hand the envelope
to the node's own loop); one that raises is counted, logged in one line, and
does not stop the rest of the frame.

Anyone who can reach the port can post frames, and the one costly check is
the signature, so a frame buys at most one failed signature check: a sender
signs every envelope it seals, so after the first bad signature the rest of
the frame is dropped unopened. Every refusal is charged to the frame's
source (its address) in a `SourceBudget`: each envelope that only a forger or
a broken peer sends (junk framing, a malformed envelope, an unknown sender,
another chain, another recipient, a bad signature) costs one refusal, and a
frame that carried replayed envelopes or an unknown kind costs one more
(once per frame: a peer that retries a frame whose answer it lost replays
it whole, and a replay costs no signature check). Replays cost the source,
never the validator named in them: anyone can capture and resend a sealed
envelope. A source whose budget is spent has its frames dropped as
`rate_limited` before they are even split, until the budget refills.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import msgpack

from ledger.errors import LedgerError
from p2p.envelope import Envelope, EnvelopeGate
from p2p.errors import Dropped
from p2p.peers import PeerTable

Handler = Callable[[Envelope], Awaitable[None]]
"""What a transport calls with every envelope that passes the gate."""

MAX_FRAME_ENVELOPES = 1024
"""Most envelopes one frame may carry."""

FORGED_REASONS = frozenset(
    {"oversized", "malformed", "unknown_sender", "wrong_chain", "wrong_recipient", "bad_signature"}
)
"""Drop reasons charged to the frame's source for each envelope: what no honest peer sends. The others (a
replay, an unknown kind) are charged once per frame."""

log = logging.getLogger(__name__)


def encode_frame(envelopes: Sequence[bytes]) -> bytes:
    """One POST body: the encoded envelopes as a msgpack array of bin."""
    return msgpack.packb(list(envelopes), use_bin_type=True)


def decode_frame(data: bytes, max_bytes: int) -> list[bytes]:
    """Split a POST body into encoded envelopes; raises `Dropped` for oversized or malformed frames."""
    if len(data) > max_bytes:
        raise Dropped("oversized", f"frame of {len(data)} bytes, limit {max_bytes}")
    try:
        items = msgpack.unpackb(data, raw=False, max_array_len=MAX_FRAME_ENVELOPES, max_map_len=0)
    except Exception as exc:  # msgpack raises several unrelated types
        raise Dropped("malformed", f"frame is not msgpack: {type(exc).__name__}") from None
    if not isinstance(items, list) or not all(type(item) is bytes for item in items):
        raise Dropped("malformed", "a frame is an array of encoded envelopes")
    return items


class SourceBudget:
    """A token bucket of refusals per source: `capacity` refusals at once, refilled at `refill_per_s`.

    Sources past `max_sources` evict the least recently seen, so the table itself stays bounded.
    """

    def __init__(
        self,
        capacity: float = 64,
        refill_per_s: float = 8.0,
        max_sources: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Source -> (tokens, when they were counted)."""

    def _tokens(self, source: str) -> float:
        tokens, then = self._buckets.get(source, (self.capacity, self._clock()))
        return min(self.capacity, tokens + (self._clock() - then) * self.refill_per_s)

    def allows(self, source: str) -> bool:
        """Whether `source` has a refusal left to spend."""
        return source not in self._buckets or self._tokens(source) >= 1

    def charge(self, source: str, refusals: int = 1) -> None:
        """Spend `refusals` of the source's budget."""
        self._buckets[source] = (self._tokens(source) - refusals, self._clock())
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)


class Inbox:
    """Gate, peer accounting and dispatch by kind for one node's incoming envelopes."""

    def __init__(
        self,
        gate: EnvelopeGate,
        peers: PeerTable,
        max_frame_bytes: int | None = None,
        budget: SourceBudget | None = None,
    ) -> None:
        self.gate = gate
        self.peers = peers
        self.max_frame_bytes = max_frame_bytes or 4 * gate.max_bytes
        """Largest POST body accepted."""
        self.budget = budget or SourceBudget()
        self.handler_errors = 0
        """Handler calls that raised."""
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        """Route envelopes of `kind` to `handler` (replacing any earlier one)."""
        self._handlers[kind] = handler

    async def receive(self, frame: bytes, source: str | None = None) -> int:
        """Process one frame from `source` (an address; None for in-process frames, which are not budgeted);
        return how many envelopes reached a handler."""
        if not self.admits(source):
            return 0
        try:
            items = decode_frame(frame, self.max_frame_bytes)
        except Dropped as exc:
            self.refuse_frame(source, exc)
            return 0
        delivered = 0
        stale: Dropped | None = None
        """The frame's last replayed envelope or unknown kind, charged once after the loop."""
        for data in items:
            try:
                envelope = self.gate.open(data)
            except Dropped as exc:
                if exc.reason in FORGED_REASONS:
                    self._refused(source, exc)
                else:
                    stale = exc
                if exc.reason == "bad_signature":
                    break
                continue
            self.peers.record_received(envelope.sender, len(data))
            handler = self._handlers.get(envelope.kind)
            if handler is None:
                self.gate.count_drop("unknown_kind")
                stale = Dropped("unknown_kind", f"no handler for {envelope.kind!r} envelopes")
                continue
            try:
                await handler(envelope)
            except LedgerError as exc:
                self.handler_errors += 1
                log.warning("%r envelope from %s refused: %s: %s", envelope.kind, envelope.sender, exc.code, exc)
                continue
            except Exception:
                self.handler_errors += 1
                log.exception("handler for %r failed on an envelope from %s", envelope.kind, envelope.sender)
                continue
            delivered += 1
        if stale is not None:
            self._refused(source, stale)
        return delivered

    def admits(self, source: str | None) -> bool:
        """Whether a frame from `source` is looked at: False (counted as `rate_limited`) while its budget is
        spent, so the caller need not even read it."""
        if source is None or self.budget.allows(source):
            return True
        self.gate.count_drop("rate_limited")
        return False

    def refuse_frame(self, source: str | None, exc: Dropped) -> None:
        """Count a whole frame refused before it was split (oversized, malformed) and charge its source."""
        self.gate.count_drop(exc.reason)
        self._refused(source, exc)

    def _refused(self, source: str | None, exc: Dropped) -> None:
        """Charge a refusal to `source`'s budget and log it in one line (it is already counted by reason)."""
        if source is None:
            return
        self.budget.charge(source)
        log.info("p2p frame from %s dropped: %s", source, str(exc)[:200])
