"""The cursor of an HTTP channel: an updated-since watermark, and the next page of the walk in progress.

A walk starts at orders updated at or after `since` and follows the
channel's next-page links; `high` is the latest change seen on the way. When
a page has no next link the walk is over and the next one starts at `high`.
Starting at (not after) the watermark re-reads the orders changed in that
very instant, and those are recognised as unchanged (`state`), so an order
changed in the same second as the last one read is not missed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Watermark:
    """Where an HTTP channel's pull stands."""

    since: str
    """ISO time: the current walk reads orders updated at or after it."""
    next: str | None = None
    """The channel's next page of the current walk (a URL or an opaque cursor), None at its start."""
    high: str | None = None
    """The latest `updated_at` seen in the current walk."""

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> Watermark:
        fields = json.loads(text)
        return cls(since=fields["since"], next=fields.get("next"), high=fields.get("high"))

    @classmethod
    def start(cls, since: datetime) -> Watermark:
        return cls(since=since.astimezone(UTC).isoformat())

    def advance(self, orders: list[Any], next_page: str | None) -> Watermark:
        """The cursor after a page of `orders` (their `updated_at`), whose next page is `next_page`."""
        updated = [o["updated_at"] for o in orders if isinstance(o, dict) and isinstance(o.get("updated_at"), str)]
        updated = [text for text in updated if read_time(text).year > 1970]
        high = max([self.high, *updated], key=lambda text: read_time(text or ""))
        if next_page is not None:
            return replace(self, next=next_page, high=high)
        return Watermark(since=high or self.since)


def read_time(text: str) -> datetime:
    """An ISO time as an aware datetime (UTC if it names no zone); the epoch if it is unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
