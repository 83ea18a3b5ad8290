"""A generic REST channel: a JSON endpoint of orders in the generic format (`channels.generic`).

A walk asks `GET {url}?{since_param}=<ISO time>&limit=<page_size>` and then
`GET {url}?{cursor_param}=<next_cursor>&limit=<page_size>`; each answer is
`{"orders": [...], "next_cursor": "..." | null}`, orders oldest change first.
A null `next_cursor` ends the walk and the next starts at the latest
`updated_at` seen (`channels.watermark`); an empty page with a cursor is
caught up, and the next poll asks that cursor again. Timeouts, `Retry-After`
and backoff as `channels.fetch` says. With `access_token_env` the secret is
sent as `Authorization: Bearer <secret>`.

Config keys: `url`, `page_size` (default 100), `timeout_seconds` (30),
`cursor_param` (`cursor`), `since_param` (`updated_since`).
"""

from __future__ import annotations

from typing import Any

from channels.config import ChannelConfig, ConfigError, read_number, read_text, require_text
from channels.fetch import ChannelError, HttpAdapter, get_json
from channels.generic import map_generic_order
from channels.records import ChannelOrder, Page
from channels.watermark import Watermark

KEYS = frozenset({"url", "page_size", "timeout_seconds", "cursor_param", "since_param"})
"""The adapter's own config keys."""


class RestAdapter(HttpAdapter):
    """Pages of a generic JSON endpoint."""

    def __init__(self, config: ChannelConfig, secret: str | None) -> None:
        self.url = require_text(config.settings, "url", config.name)
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"channel {config.name!r}: url must be an http(s) URL, not {self.url!r}")
        self.page_size = int(read_number(config.settings, "page_size", 100, config.name, 1, 1000))
        self.cursor_param = read_text(config.settings, "cursor_param", config.name, default="cursor") or "cursor"
        self.since_param = read_text(config.settings, "since_param", config.name, default="updated_since") or ""
        super().__init__(config, {} if secret is None else {"Authorization": f"Bearer {secret}"})

    def fetch(self, cursor: str) -> Page:
        mark = Watermark.decode(cursor)
        if mark.next is None:
            params = {self.since_param: mark.since, "limit": self.page_size}
        else:
            params = {self.cursor_param: mark.next, "limit": self.page_size}
        body, _ = get_json(self.client, self.url, params=params)
        orders = self.read_orders(body, self.url)
        next_cursor = body.get("next_cursor")
        if next_cursor is not None and (type(next_cursor) is not str or len(next_cursor) > 2000):
            raise ChannelError(f"{self.url} answered a next_cursor that is not a string: {next_cursor!r}"[:300])
        caught_up = next_cursor is None or not orders
        return Page(orders=orders, cursor=mark.advance(orders, next_cursor).encode(), caught_up=caught_up)

    def map_order(self, raw: Any) -> ChannelOrder:
        return map_generic_order(raw)
