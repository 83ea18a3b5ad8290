"""Fetching a channel's pages over HTTP: timeouts, `Retry-After`, backoff with jitter, bounded bodies.

A channel that answers 429 or 503 is obeyed: the next try waits what its
`Retry-After` says (seconds, fractional as Shopify writes them, or an HTTP
date), at most `MAX_WAIT_S`. A dropped connection, a timeout or another 5xx
is tried again after an exponential backoff with jitter. Any other answer,
or `ATTEMPTS` failures in a row, is a `ChannelError`: the page is not
taken, the cursor stays, and the puller tries again at its next poll.
JSON is read with its numbers as `Decimal`, so no amount passes through a
float.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from channels.config import ChannelConfig, read_number
from channels.watermark import Watermark

ATTEMPTS = 8
"""Tries of one page before the pull is given up until the next poll."""

MAX_WAIT_S = 60.0
"""Longest wait between two tries, whatever `Retry-After` asks."""

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest page body read."""


class ChannelError(Exception):
    """The channel could not be read now (the pull is retried at the next poll)."""


class HttpAdapter:
    """What the HTTP adapters share: a client with the channel's timeout and headers, the watermark cursor
    (`channels.watermark`), and the `orders` list of an answer."""

    def __init__(self, config: ChannelConfig, headers: Mapping[str, str]) -> None:
        timeout = read_number(config.settings, "timeout_seconds", 30, config.name, 1, 600)
        self.client = httpx.Client(timeout=timeout, headers=dict(headers), follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def start_cursor(self, since: datetime) -> str:
        return Watermark.start(since).encode()

    def finish(self, cursor: str) -> None:
        """Nothing to clear away once a page is saved."""

    def read_orders(self, body: Any, url: str) -> list[Any]:
        """The `orders` list of a channel's answer."""
        if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
            raise ChannelError(f"{url} answered without an `orders` list")
        orders: list[Any] = body["orders"]
        return orders


def read_retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), or None if absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_WAIT_S) if seconds == seconds else None


def compute_backoff(attempt: int) -> float:
    """Seconds before try `attempt + 1` after a failure without `Retry-After`: 0.5 s doubling, with jitter."""
    return min(MAX_WAIT_S, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)


def get_json(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Any, httpx.Headers]:
    """GET `url` until it answers 200 with JSON (numbers as `Decimal`); its value and headers."""
    problem = ""
    for attempt in range(ATTEMPTS):
        try:
            response = client.get(url, params=params, headers=headers)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
            sleep(compute_backoff(attempt))
            continue
        if response.status_code == 200:
            return decode_body(response), response.headers
        problem = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in (429, 503):
            wait = read_retry_after(response)
            sleep(compute_backoff(attempt) if wait is None else wait)
        elif response.status_code >= 500:
            sleep(compute_backoff(attempt))
        else:
            raise ChannelError(f"{url} answered {problem}")
    raise ChannelError(f"{url} failed {ATTEMPTS} times, last: {problem}")


def decode_body(response: httpx.Response) -> Any:
    """A 200 answer's JSON, bounded, with its numbers as `Decimal`."""
    if len(response.content) > MAX_BODY_BYTES:
        raise ChannelError(f"{response.url} sent {len(response.content)} bytes, over {MAX_BODY_BYTES}")
    try:
        return json.loads(response.content, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise ChannelError(f"{response.url} sent no JSON: {exc}") from exc
