"""Request limits: body size, enforced before a body is held whole, per request and over all requests at
once, and a rate per API token.

`BodyLimitMiddleware` sits in front of every route but the envelope inbox
(which applies its own, larger limit the same way). A declared
Content-Length over the limit is refused with 413 without reading anything;
a body streamed without one, or longer than it declared, is cut off as soon
as it passes the limit. Only then does the route see the body, so no route
parses more than `MAX_BODY_BYTES`, whatever it does with it.

A limit per request does not bound memory by itself: many connections, each
under the limit, together hold as much as they send. So the bytes of bodies
held at once, by all requests together, come from one `BodyBudget`
(`MAX_BODIES_IN_FLIGHT`): a body is charged as its bytes arrive and given
back when its request has been answered, and a request whose next bytes do
not fit is refused with 503 `server_busy` and `Retry-After`.

`RateLimiter` keeps a token bucket of work units per API token, and per
client address for the routes that need no token (`POST /v1/tx`, `/v1/txs`).
A request costs one unit when it arrives, and once answered what it made
the node do (`WorkMeter`): rows read from the state or scanned by a page
(`ROWS_PER_UNIT` a unit), request bytes (`REQUEST_BYTES_PER_UNIT`), answer
bytes (`ANSWER_BYTES_PER_UNIT`) and tx signatures checked (one a unit: a
unit is about what one signature check costs). The routes that need no
token (`PAID_BY_ADDRESS`) are paid by the client's address, checked before
the body is even read. A key in debt is answered 429 with
`Retry-After` until its bucket refills, so a token that sends a few requests
that each scan the whole stock waits as long as one that sent many cheap
ones. Every answer to a request with a token announces where the token
stands, in units, in the IETF draft's headers `RateLimit-Limit` (the
bucket's size), `RateLimit-Remaining` and `RateLimit-Reset` (seconds until
the bucket is full), a refusal for rate as well. Page sizes and batch sizes
are bounded where they are read (`MAX_PAGE`, `MAX_IMPORT`,
`node.api.txs.MAX_BATCH`).

`AnswerPacing` cuts answer bodies into `ANSWER_CHUNK_BYTES` pieces: the
server writes the next piece only once the connection's buffer has drained
(uvicorn waits on flow control between sends), so a client that does not
read holds at most a piece or two in its connection's buffer, and the
server's write deadline (`node.server.WRITE_DEADLINE_S`) then drops it.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import LedgerError
from ledger.state import StateReader
from node.api.errors import BodyTooLarge, InvalidRequest, RateLimited, ServerBusy, error_body

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest body of an API request: a full batch of ordinary txs as JSON fits several times over."""

MAX_BODIES_IN_FLIGHT = 64 * 1024 * 1024
"""Most bytes of API request bodies held at once by all requests together (four bodies at the limit)."""

MAX_PAGE = 500
"""Most items one page of a list answers."""

DEFAULT_PAGE = 100
"""Items of a page when the client does not say."""

MAX_IMPORT = 500
"""Most orders one `POST /v1/orders/import` places."""


def _no_charge(size: int) -> None:
    return None


async def read_capped_body(
    scope: Scope, receive: Receive, limit: int, charge: Callable[[int], None] = _no_charge
) -> bytes:
    """The request body; raises `BodyTooLarge` as soon as it is known to exceed `limit` bytes, and
    `InvalidRequest` if the client leaves before it is complete. Each part is passed to `charge` (which may
    refuse it by raising) before it is kept."""
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            raise BodyTooLarge(f"request body is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InvalidRequest("the client went away before its body was complete")
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise BodyTooLarge(f"request body is larger than {limit} bytes")
        charge(len(part))
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


class BodyBudget:
    """The bytes of request bodies that all requests together may hold at once."""

    def __init__(self, limit: int = MAX_BODIES_IN_FLIGHT) -> None:
        self.limit = limit
        self.held = 0
        """Bytes charged and not yet given back."""
        self.refused = 0
        """Requests refused because their body did not fit."""

    def charge(self, size: int) -> None:
        if self.held + size > self.limit:
            self.refused += 1
            raise ServerBusy(f"the node holds {self.held} bytes of request bodies, its bound; retry shortly")
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size


class BodyLimitMiddleware:
    """Reads each request's body up to `limit` bytes, charged to `budget`, answers 413 or 503 when it does not
    fit, and replays it to the app."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, budget: BodyBudget | None = None) -> None:
        self.app = app
        self.limit = limit
        self.budget = budget if budget is not None else BodyBudget()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        charged = 0

        def charge(size: int) -> None:
            nonlocal charged
            self.budget.charge(size)
            charged += size

        try:
            try:
                body = await read_capped_body(scope, receive, self.limit, charge)
            except LedgerError as refusal:
                await _refuse(send, refusal)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.budget.give_back(charged)


async def _refuse(send: Send, refusal: LedgerError, close: bool = False) -> None:
    """Answer `refusal` as an error body; `close`: and close the connection, dropping a body left unread."""
    content = json.dumps(error_body(refusal.code, str(refusal))).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    headers += [(name.encode(), value.encode()) for name, value in getattr(refusal, "headers", {}).items()]
    if refusal.retry_after_s is not None:
        headers.append((b"retry-after", str(refusal.retry_after_s).encode()))
    await send({"type": "http.response.start", "status": refusal.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


ROWS_PER_UNIT = 10
"""Rows read from the state or scanned by a page that cost one unit of work (a unit is about 50 µs of the
node's CPU, one signature check: a stock reconciliation of 1,000 SKUs took 12 ms and costs about 250 units)."""

REQUEST_BYTES_PER_UNIT = 1024
"""Request body bytes that cost one unit of work (what it takes to parse and check them as JSON or msgpack)."""

ANSWER_BYTES_PER_UNIT = 64 * 1024
"""Answer bytes that cost one unit of work."""

ANSWER_CHUNK_BYTES = 256 * 1024
"""Largest piece of an answer body written to a connection at once."""

MAX_RATE_KEYS = 65536
"""Most tokens and addresses whose buckets are kept (the least recently seen are forgotten)."""


@dataclass
class WorkMeter:
    """What one request made the node do, charged to `key` once it is answered."""

    key: str | None = None
    """Who pays: `token:<id>` or `address:<host>`; None for routes that are free (public reads, `/p2p`)."""
    rate: float | None = None
    """The payer's own rate (a token's `--rate`), or None for the node's setting."""
    rows: int = 0
    """Rows read from the state or scanned by a page."""
    answer_bytes: int = 0
    request_bytes: int = 0
    signatures: int = 0
    """Tx signatures checked."""

    def units(self) -> int:
        read, asked = self.rows // ROWS_PER_UNIT, self.request_bytes // REQUEST_BYTES_PER_UNIT
        return read + asked + self.answer_bytes // ANSWER_BYTES_PER_UNIT + self.signatures


CURRENT_WORK: ContextVar[WorkMeter | None] = ContextVar("current_work", default=None)
"""The meter of the request being handled (set by `WorkMiddleware`)."""


def note_rows(rows: int) -> None:
    """Count `rows` read or scanned against the current request."""
    meter = CURRENT_WORK.get()
    if meter is not None:
        meter.rows += rows


def note_signatures(checks: int) -> None:
    """Count tx signature checks against the current request."""
    meter = CURRENT_WORK.get()
    if meter is not None:
        meter.signatures += checks


class MeteredReader:
    """A state reader (`ledger.state.StateReader`) that counts every row it reads against the current request."""

    def __init__(self, base: StateReader) -> None:
        self._base = base

    def get_state(self, key: bytes) -> bytes | None:
        note_rows(1)
        return self._base.get_state(key)

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for entry in self._base.scan_state(prefix):
            note_rows(1)
            yield entry


@dataclass(frozen=True)
class Quota:
    """Where a token stands against its rate after a request, as the `RateLimit` headers announce it."""

    limit: int
    """Units the token may spend at once (its bucket's size)."""
    remaining: int
    """Units it may spend now (negative while in debt)."""
    reset_s: int
    """Seconds until its bucket is full again."""

    def headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_s),
        }


class RateLimiter:
    """A token bucket of work units per key (an API token or a client address): `burst` units at once, refilled
    at `rate` per second; a request is refused while its key is in debt."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Key -> (units left, when that was counted); below zero while in debt."""

    def _left(self, key: str, rate: float | None) -> tuple[float, float, float]:
        """(units left now, the bucket's size, the rate that refills it); a key with a `rate` of its own bursts to
        twice that."""
        burst = float(self.burst) if rate is None else 2.0 * rate
        rate = self.rate if rate is None else rate
        left, since = self._buckets.get(key, (burst, self.clock()))
        return min(burst, left + (self.clock() - since) * rate), burst, rate

    def take(self, key: str, rate: float | None = None) -> Quota:
        """Count one request of `key` and answer where it then stands, or raise `RateLimited` saying when one
        will be allowed (with the `RateLimit` headers)."""
        left, burst, rate = self._left(key, rate)
        if left < 1:
            wait = math.ceil((1 - left) / rate)
            refusal = RateLimited(
                f"more than {rate:g} units of work per second from this {key.partition(':')[0]}", wait
            )
            refusal.headers = _quota(burst, left, rate).headers()
            raise refusal
        self._store(key, left - 1)
        return _quota(burst, left - 1, rate)

    def charge(self, key: str, units: int, rate: float | None = None) -> None:
        """Spend `units` of `key`'s bucket for work already done (it may go into debt)."""
        if units:
            self._store(key, self._left(key, rate)[0] - units)

    def _store(self, key: str, left: float) -> None:
        self._buckets[key] = (left, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_RATE_KEYS:
            self._buckets.popitem(last=False)


PAID_BY_ADDRESS = frozenset({"/v1/tx", "/v1/txs"})
"""Routes that need no token and do work (decoding and checking signed txs): each client address pays for its
own, at the node's `api_address_rate_per_s`."""


class WorkMiddleware:
    """Gives each request a `WorkMeter`, counts its body and answer bytes, and charges the total to the meter's
    key once it is answered: a token's (set by `node.api.deps.charge_work_to`), or for `PAID_BY_ADDRESS` the
    client address's, which is refused here, body unread, while in debt."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        meter = WorkMeter()
        state = scope["app"].state
        if scope["path"] in PAID_BY_ADDRESS:
            meter.key = f"address:{scope['client'][0] if scope.get('client') else 'unknown'}"
            meter.rate = state.address_rate_per_s
            try:
                state.rate_limiter.take(meter.key, meter.rate)
            except RateLimited as refusal:
                await _refuse(send, refusal, close=True)  # the body it is sending would cost more than the answer
                return
        reset = CURRENT_WORK.set(meter)

        async def counting_receive() -> Message:
            message = await receive()
            meter.request_bytes += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                meter.answer_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            CURRENT_WORK.reset(reset)
            if meter.key is not None:
                state.rate_limiter.charge(meter.key, meter.units(), meter.rate)


class AnswerPacing:
    """Cuts answer bodies into `ANSWER_CHUNK_BYTES` pieces, so each waits for the connection to drain."""

    def __init__(self, app: ASGIApp, chunk: int = ANSWER_CHUNK_BYTES) -> None:
        self.app = app
        self.chunk = chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def paced(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] != "http.response.body" or len(body) <= self.chunk:
                await send(message)
                return
            more = message.get("more_body", False)
            view = memoryview(body)
            for start in range(0, len(body), self.chunk):
                last = start + self.chunk >= len(body)
                piece = bytes(view[start : start + self.chunk])
                await send({"type": "http.response.body", "body": piece, "more_body": more or not last})

        await self.app(scope, receive, paced)


def _quota(burst: float, left: float, rate: float) -> Quota:
    return Quota(math.floor(burst), math.floor(left), math.ceil((burst - left) / rate))
