"""Sealed reads: a node serves its blocks, snapshots and peer records only to member nodes.

Every `GET` under `/p2p` (status, blocks, snapshot manifest and chunks,
address records) carries a seal in the `X-OMS-Seal` header: an envelope
(`p2p.envelope`) of kind `read`, signed by the reading node's key, addressed
to the node it asks, whose body binds the request: its path, its query
string (parameters sorted by name, URL-encoded) and the reader's clock in
milliseconds. The header holds the encoded envelope in base64.

The serving node opens it through a `ReadGate`, an `EnvelopeGate` of its own
whose senders are the nodes of the membership in force: the validators of
the set that certifies the next block and of every set scheduled after it
(so a validator governance has added reads before its set begins), and the
client identities with the role `node` (an organisation's node that follows
the chain without voting). A request without a seal, with a malformed or
badly signed one, one for another node, chain, path or query, or one too far
from the serving node's clock (`MAX_READ_SKEW_MS`) is refused as
`unauthenticated` (401); a seal by anyone who is not a member node is
`forbidden` (403). Nothing of the chain is in either answer.

Replay: each sender's sequence numbers pass the gate's sliding window once,
and a seal older than `MAX_READ_SKEW_MS` is refused even by a node that
restarted and forgot its windows; so a captured seal buys at most one answer,
to that one request, on that one node, for a short while.

A fetcher seals its reads with a `ReadSealer` (`headers(peer, path,
params)`); `p2p.sync.HttpSyncSource` takes one and seals every GET.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from ledger.encoding import decode, encode
from ledger.errors import EncodingError
from ledger.genesis import Genesis
from p2p.envelope import EnvelopeGate, Sealer
from p2p.errors import Dropped

READ_KIND = "read"
"""Envelope kind of a sealed read."""

SEAL_HEADER = "x-oms-seal"
"""HTTP header carrying the seal (base64 of the encoded envelope)."""

READER_ROLE = "node"
"""Role of a client identity that is a non-voting node of its organisation: it may read the chain."""

MAX_SEAL_BYTES = 4096
"""Largest encoded seal a gate opens (a seal is about 300 bytes)."""

MAX_READ_SKEW_MS = 120_000
"""How far a seal's time may be from the serving node's clock."""

FORBIDDEN_REASONS = frozenset({"unknown_sender"})
"""Drop reasons that mean "a signer, but not a member node" (403); every other one is 401."""

ClockMs = Callable[[], int]
"""Milliseconds since the epoch."""


def encode_query(params: Iterable[tuple[str, Any]]) -> str:
    """The query string a seal binds: parameters sorted by name then value, URL-encoded."""
    return urlencode(sorted((str(name), str(value)) for name, value in params))


def encode_read(path: str, query: str, at_ms: int) -> bytes:
    """The body of a read seal."""
    return encode({"at_ms": at_ms, "path": path, "query": query})


class ReadSealer:
    """Seals this node's reads: its envelope `Sealer` (key, id, chain, sequence numbers) and its clock."""

    def __init__(self, sealer: Sealer, clock_ms: ClockMs) -> None:
        self.sealer = sealer
        self.clock_ms = clock_ms

    def headers(self, peer: str, path: str, params: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The header that lets `peer` answer `GET path?params` to this node."""
        body = encode_read(path, encode_query((params or {}).items()), self.clock_ms())
        sealed = self.sealer.seal(peer, READ_KIND, body)
        return {SEAL_HEADER: base64.b64encode(sealed).decode("ascii")}


class ReadGate:
    """The serving side: opens a request's seal, or raises `Dropped` (reason counted in `gate.dropped`)."""

    def __init__(self, genesis: Genesis, node_id: str, clock_ms: ClockMs) -> None:
        self.gate = EnvelopeGate(genesis, node_id, max_bytes=MAX_SEAL_BYTES)
        """The envelope checks: size, shape, member sender, chain, recipient, replay, signature."""
        self.clock_ms = clock_ms

    def set_readers(self, keys: Mapping[str, frozenset[bytes]]) -> None:
        """Serve the member nodes with these ids and keys from now on (the membership changed)."""
        self.gate.set_senders(keys)

    def open(self, seal: str | None, path: str, params: Iterable[tuple[str, Any]]) -> str:
        """The id of the member node that sealed this request for `path` and `params`; `Dropped` otherwise."""
        if not seal:
            self.gate.count_drop("unsealed")
            raise Dropped("unsealed", f"send a seal in the {SEAL_HEADER} header")
        if len(seal) > MAX_SEAL_BYTES * 2:
            self.gate.count_drop("oversized")
            raise Dropped("oversized", f"a seal is at most {MAX_SEAL_BYTES} bytes")
        try:
            data = base64.b64decode(seal, validate=True)
        except (binascii.Error, ValueError) as exc:
            self.gate.count_drop("malformed")
            raise Dropped("malformed", "the seal is not base64") from exc
        envelope = self.gate.open(data)
        try:
            self._check_body(envelope.kind, envelope.body, path, encode_query(params))
        except Dropped as exc:
            self.gate.count_drop(exc.reason)
            raise
        return envelope.sender

    def _check_body(self, kind: str, body: bytes, path: str, query: str) -> None:
        if kind != READ_KIND:
            raise Dropped("wrong_request", f"a {kind!r} envelope is not a read seal")
        try:
            wire = decode(body)
        except EncodingError as exc:
            raise Dropped("malformed", str(exc)) from exc
        if not isinstance(wire, dict) or set(wire) != {"at_ms", "path", "query"} or type(wire["at_ms"]) is not int:
            raise Dropped("malformed", "a read seal's body is a map of at_ms, path and query")
        if (wire["path"], wire["query"]) != (path, query):
            raise Dropped("wrong_request", "the seal was made for another request")
        if abs(wire["at_ms"] - self.clock_ms()) > MAX_READ_SKEW_MS:
            raise Dropped("stale", f"the seal's time is more than {MAX_READ_SKEW_MS} ms from this node's clock")


def is_forbidden(exc: Dropped) -> bool:
    """Was the request sealed, but by someone who is not a member node (403 rather than 401)?"""
    return exc.reason in FORBIDDEN_REASONS
