"""Sending one webhook delivery: the signed POST, bounded in time and in what is read back.

The body is the event as `/v1/events` shows it, as compact JSON with sorted
keys (the same bytes on every attempt). Headers:

- `X-OMS-Event`: the event's type;
- `X-OMS-Delivery`: the delivery id, the same on every attempt (the receiver's idempotency key);
- `X-OMS-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.

A receiver checks the signature over the raw bytes it received, and that `t`
is recent (it stops a captured delivery from being replayed much later).

A receiver is anyone's server, and may hang or answer without end: an
attempt has `timeout_s` in all (connecting, sending, waiting, reading), and
reads at most `MAX_RESPONSE_BYTES` of the answer (for the error text), never
more, whatever the receiver sends. Redirects are not followed. Any 2xx
answer is a delivery; anything else, or no answer in time, is a failed
attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import httpx

MAX_RESPONSE_BYTES = 1024
"""Most bytes of a receiver's answer read (kept as the error text of a failed attempt)."""

USER_AGENT = "oms-ledger-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    """How one attempt went."""

    ok: bool
    status: int | None
    """The receiver's HTTP status (None: no answer)."""
    error: str
    """What went wrong ("" when delivered)."""


def encode_body(event: dict[str, Any]) -> bytes:
    """The bytes POSTed for an event: compact JSON, keys sorted."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-OMS-Signature` header of `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def make_headers(event_type: str, delivery_id: str, signature: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "x-oms-event": event_type,
        "x-oms-delivery": delivery_id,
        "x-oms-signature": signature,
    }


async def post_delivery(
    client: httpx.AsyncClient, *, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> Attempt:
    """POST one delivery and tell how it went; never raises for what the receiver does."""
    try:
        return await asyncio.wait_for(_post(client, url, body, headers), timeout_s)
    except TimeoutError:
        return Attempt(False, None, f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:200])


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    async with client.stream("POST", url, content=body, headers=headers) as response:
        if 200 <= response.status_code < 300:
            return Attempt(True, response.status_code, "")
        head = b""
        async for chunk in response.aiter_raw():
            head += chunk[: MAX_RESPONSE_BYTES - len(head)]
            if len(head) >= MAX_RESPONSE_BYTES:
                break
        text = head.decode("utf-8", "replace").strip()
        return Attempt(False, response.status_code, f"HTTP {response.status_code}: {text}")
