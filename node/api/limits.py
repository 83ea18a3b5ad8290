"""Request limits: body size, enforced before a body is held whole, and a rate per API token.

`BodyLimitMiddleware` sits in front of every route but the envelope inbox
(which applies its own, larger limit the same way). A declared
Content-Length over the limit is refused with 413 without reading anything;
a body streamed without one, or longer than it declared, is cut off as soon
as it passes the limit. Only then does the route see the body, so no route
parses more than `MAX_BODY_BYTES`, whatever it does with it.

`RateLimiter` keeps a token bucket per API token; a request over the rate is
answered 429 with `Retry-After`. Page sizes and batch sizes are bounded where
they are read (`MAX_PAGE`, `node.api.txs.MAX_BATCH`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api.errors import BodyTooLarge, RateLimited, error_body

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest body of an API request: a full batch of ordinary txs as JSON fits several times over."""

MAX_PAGE = 500
"""Most items one page of a list answers."""

DEFAULT_PAGE = 100
"""Items of a page when the client does not say."""


async def read_capped_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


class BodyLimitMiddleware:
    """Reads each request's body up to `limit` bytes, answers 413 past it, and replays it to the app."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_capped_body(scope, receive, self.limit)
        if body is None:
            refusal = BodyTooLarge(f"request body is larger than {self.limit} bytes")
            content = json.dumps(error_body(refusal.code, str(refusal))).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
            await send({"type": "http.response.start", "status": refusal.http_status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class RateLimiter:
    """A token bucket per API token: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """Token id -> (requests left, when that was counted)."""

    def take(self, token_id: str, rate: float | None = None) -> None:
        """Count one request of `token_id`, or raise `RateLimited` saying when one will be allowed. A token
        with a `rate` of its own bursts to twice that."""
        now = self.clock()
        burst = float(self.burst) if rate is None else 2.0 * rate
        rate = self.rate if rate is None else rate
        left, since = self._buckets.get(token_id, (burst, now))
        left = min(burst, left + (now - since) * rate)
        if left < 1:
            wait = math.ceil((1 - left) / rate)
            raise RateLimited(f"more than {rate:g} requests per second with this token", wait)
        self._buckets[token_id] = (left - 1, now)
