"""Cursor pagination: every list answers `{"items": [...], "next_cursor": ...}` (`node.api.models.Page`).

A cursor is opaque to clients: the position after the last item of a page (an
index or state key), in URL-safe base64. A page reads at most `limit` items
plus those its filters skip, and never more than `MAX_SCAN` keys, so what a
page costs does not grow with the size of the ledger. A page may be short (or
empty) and still have a `next_cursor` when its filters skipped many keys; the
list is over when `next_cursor` is null.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Query

from node.api.errors import InvalidRequest
from node.api.limits import MAX_PAGE, note_rows

MAX_SCAN = 5000
"""Most keys one page reads before it answers, full or not."""

Item = TypeVar("Item")

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Items per page (at most {MAX_PAGE})")]
"""The `limit` parameter of every list (default `DEFAULT_PAGE`)."""
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page; absent for the first page")]


def encode_cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> bytes | None:
    if cursor is None:
        return None
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("cursor is not one this API gave", at="query.cursor") from exc


def collect(
    entries: Iterable[tuple[bytes, Any]], limit: int, render: Callable[[Any], Item | None]
) -> tuple[list[Item], str | None]:
    """Up to `limit` rendered items from `entries` (key, value) in order; `render` answers None to skip one.

    Answers the items and the cursor after the last key read, or None when `entries` ran out; the keys read
    count as the request's work."""
    items: list[Item] = []
    scanned = 0
    for scanned, (key, value) in enumerate(entries, 1):  # the count is charged after the loop
        item = render(value)
        if item is not None:
            items.append(item)
        if len(items) == limit or scanned == MAX_SCAN:
            note_rows(scanned)
            return items, encode_cursor(key)
    note_rows(scanned)
    return items, None
