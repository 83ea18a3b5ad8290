"""The receiving end shared by every transport: frames in, checked envelopes out to handlers.

A frame is what one HTTP POST to `/p2p` carries: a msgpack array of encoded
envelopes (one or more, batched by the sender). The `Inbox` splits a frame,
opens each envelope through the `EnvelopeGate` (refused ones are counted and
skipped, never acted on), records it in the `PeerTable`, and awaits the
handler registered for its kind. Handlers should be quick (hand the envelope
to the node's own loop); one that raises is counted and does not stop the
rest of the frame.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import msgpack

from p2p.envelope import Envelope, EnvelopeGate
from p2p.errors import Dropped
from p2p.peers import PeerTable

Handler = Callable[[Envelope], Awaitable[None]]
"""What a transport calls with every envelope that passes the gate."""

MAX_FRAME_ENVELOPES = 1024
"""Most envelopes one frame may carry."""

log = logging.getLogger(__name__)


def encode_frame(envelopes: Sequence[bytes]) -> bytes:
    """One POST body: the encoded envelopes as a msgpack array of bin."""
    return msgpack.packb(list(envelopes), use_bin_type=True)


def decode_frame(data: bytes, max_bytes: int) -> list[bytes]:
    """Split a POST body into encoded envelopes; raises `Dropped` for oversized or malformed frames."""
    if len(data) > max_bytes:
        raise Dropped("oversized", f"frame of {len(data)} bytes, limit {max_bytes}")
    try:
        items = msgpack.unpackb(data, raw=False, max_array_len=MAX_FRAME_ENVELOPES)
    except Exception as exc:  # msgpack raises several unrelated types
        raise Dropped("malformed", f"frame is not msgpack: {exc}") from exc
    if not isinstance(items, list) or not all(type(item) is bytes for item in items):
        raise Dropped("malformed", "a frame is an array of encoded envelopes")
    return items


class Inbox:
    """Gate, peer accounting and dispatch by kind for one node's incoming envelopes."""

    def __init__(self, gate: EnvelopeGate, peers: PeerTable, max_frame_bytes: int | None = None) -> None:
        self.gate = gate
        self.peers = peers
        self.max_frame_bytes = max_frame_bytes or 4 * gate.max_bytes
        """Largest POST body accepted."""
        self.handler_errors = 0
        """Handler calls that raised."""
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        """Route envelopes of `kind` to `handler` (replacing any earlier one)."""
        self._handlers[kind] = handler

    async def receive(self, frame: bytes) -> int:
        """Process one frame; return how many envelopes reached a handler."""
        try:
            items = decode_frame(frame, self.max_frame_bytes)
        except Dropped as exc:
            self.gate.count_drop(exc.reason)
            return 0
        delivered = 0
        for data in items:
            try:
                envelope = self.gate.open(data)
            except Dropped:
                continue
            self.peers.record_received(envelope.sender, len(data))
            handler = self._handlers.get(envelope.kind)
            if handler is None:
                self.gate.count_drop("unknown_kind")
                continue
            try:
                await handler(envelope)
            except Exception:
                self.handler_errors += 1
                log.exception("handler for %r failed on an envelope from %s", envelope.kind, envelope.sender)
                continue
            delivered += 1
        return delivered
