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

`RateLimiter` keeps a token bucket per API token; every answer to a request
with a token announces where the token stands in the IETF draft's headers
`RateLimit-Limit` (the bucket's size), `RateLimit-Remaining` (requests it
may send now) and `RateLimit-Reset` (seconds until the bucket is full), and
a request over the rate is answered 429 with `Retry-After` as well. Page sizes and batch sizes are bounded where
they are read (`MAX_PAGE`, `MAX_IMPORT`, `node.api.txs.MAX_BATCH`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import LedgerError
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


async def _refuse(send: Send, refusal: LedgerError) -> None:
    content = json.dumps(error_body(refusal.code, str(refusal))).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    if refusal.retry_after_s is not None:
        headers.append((b"retry-after", str(refusal.retry_after_s).encode()))
    await send({"type": "http.response.start", "status": refusal.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


@dataclass(frozen=True)
class Quota:
    """Where a token stands against its rate after a request, as the `RateLimit` headers announce it."""

    limit: int
    """Requests the token may send at once (its bucket's size)."""
    remaining: int
    """Requests it may send now."""
    reset_s: int
    """Seconds until its bucket is full again."""

    def headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_s),
        }


class RateLimiter:
    """A token bucket per API token: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """Token id -> (requests left, when that was counted)."""

    def take(self, token_id: str, rate: float | None = None) -> Quota:
        """Count one request of `token_id` and answer where the token then stands, or raise `RateLimited`
        saying when one will be allowed (with the `RateLimit` headers). A token with a `rate` of its own bursts
        to twice that."""
        now = self.clock()
        burst = float(self.burst) if rate is None else 2.0 * rate
        rate = self.rate if rate is None else rate
        left, since = self._buckets.get(token_id, (burst, now))
        left = min(burst, left + (now - since) * rate)
        if left < 1:
            wait = math.ceil((1 - left) / rate)
            refusal = RateLimited(f"more than {rate:g} requests per second with this token", wait)
            refusal.headers = _quota(burst, left, rate).headers()
            raise refusal
        self._buckets[token_id] = (left - 1, now)
        return _quota(burst, left - 1, rate)


def _quota(burst: float, left: float, rate: float) -> Quota:
    return Quota(math.floor(burst), math.floor(left), math.ceil((burst - left) / rate))
