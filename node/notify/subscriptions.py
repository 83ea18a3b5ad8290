"""Webhook subscriptions: which receiver gets which events of the change feed, kept by the node they were made on.

A subscription belongs to the organisation of the token that made it, and
receives the events that organisation may read (`node.feed`; an operator's or
auditor's subscription receives every organisation's). It is kept in this
node's own part of the store, never on the ledger, so only this node sends
its deliveries: a receiver is told once, not once per node. It starts at
the newest event of the feed when it is made.

    wh/s/<subscription id> -> Subscription

The secret signs every delivery (`node.notify.delivery`); it is shown when the
subscription is made and never again.
"""

from __future__ import annotations

import re
import secrets
from typing import TypedDict
from urllib.parse import urlsplit

from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.store import Store
from node.feed import EVENT_TYPES

MAX_URL_LENGTH = 2048
"""Longest receiver URL."""

MAX_PER_ORG = 20
"""Most subscriptions of one organisation on one node (each is a follower of the feed and a sender)."""

SECRET_PATTERN = re.compile(r"[\x21-\x7e]{16,128}")
"""A secret given by the caller: 16 to 128 printable ASCII characters, no spaces."""

_SUBSCRIPTION = b"wh/s/"


class SubscriptionError(LedgerError):
    """A subscription that cannot be made as asked."""

    code = "invalid_subscription"


class Subscription(TypedDict):
    """One receiver and what it is sent."""

    id: str
    org: str
    """The organisation of the token that made it: it alone may list, change or remove it."""
    sees_all: bool
    """Made by an operator or auditor: receives every organisation's events."""
    url: str
    events: list[str]
    """The event types sent, sorted."""
    secret: str
    created_ms: int
    created_by: str
    """The identity of the token that made it."""
    start_cursor: int
    """The newest event of the feed when it was made: it receives the events after it."""


def check_url(url: str) -> str:
    """`url` if it is an absolute http(s) URL of a reasonable length; else `SubscriptionError`."""
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(f"the receiver must be an http:// or https:// URL of at most {MAX_URL_LENGTH} chars")
    return url


def check_events(events: list[str]) -> list[str]:
    """The event types, sorted and without repeats, if every one is known; else `SubscriptionError`."""
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise SubscriptionError(f"unknown event types {unknown or events}; known: {', '.join(EVENT_TYPES)}")
    return sorted(set(events))


def make_secret(given: str | None) -> str:
    """The secret the caller chose (if it is one), or a new random one."""
    if given is None:
        return "whsec_" + secrets.token_hex(24)
    if not SECRET_PATTERN.fullmatch(given):
        raise SubscriptionError("a secret is 16 to 128 printable ASCII characters without spaces")
    return given


def _key(subscription_id: str) -> bytes:
    return _SUBSCRIPTION + subscription_id.encode()


def save_subscription(store: Store, subscription: Subscription) -> None:
    store.write_local({_key(subscription["id"]): encode(dict(subscription))})


def remove_subscription(store: Store, subscription_id: str) -> None:
    store.write_local({_key(subscription_id): None})


def load_subscriptions(store: Store) -> list[Subscription]:
    """Every subscription of this node, in id order."""
    return [decode(raw) for _, raw in store.scan_local(_SUBSCRIPTION, _SUBSCRIPTION + b"\xff")]


def new_subscription_id() -> str:
    return "wh_" + secrets.token_hex(8)
