"""The adapters, one module each, with one job: fetch a page after a cursor, and map one channel order.

A new channel is one module with a class of this `Adapter` shape and its
config `KEYS`, added to `ADAPTERS`, and a test of its mapping.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Protocol

from channels import files, rest, shopify
from channels.config import ChannelConfig, ConfigError
from channels.records import ChannelOrder, Page
from omsclient.customers import MIN_KEY_BYTES


class Adapter(Protocol):
    """What the puller asks of a channel."""

    def start_cursor(self, since: datetime) -> str:
        """The cursor of a new channel that starts at `since`."""

    def fetch(self, cursor: str) -> Page:
        """The page after `cursor` (raises `ChannelError` when the channel cannot be read now)."""

    def map_order(self, raw: Any) -> ChannelOrder:
        """One channel order in the ledger's terms (raises `Unfit` with the reason it cannot be)."""

    def finish(self, cursor: str) -> None:
        """Clear away what a saved page leaves (the files adapter moves its file aside)."""

    def close(self) -> None: ...


ADAPTER_KEYS: dict[str, frozenset[str]] = {"shopify": shopify.KEYS, "rest": rest.KEYS, "files": files.KEYS}
"""Each adapter's own config keys."""


def read_customer_key(config: ChannelConfig) -> bytes:
    """The organisation's customer key, from the environment variable the config names (`customer_key_env`)."""
    key = os.environ.get(config.customer_key_env, "").encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"channel {config.name!r}: environment variable {config.customer_key_env} must hold the organisation's "
            f"customer key (at least {MIN_KEY_BYTES} bytes): customer references are hashed with it"
        )
    return key


def make_adapter(config: ChannelConfig) -> Adapter:
    """The adapter of a channel, with its secret from the environment variable the config names."""
    secret = None
    if config.access_token_env is not None:
        secret = os.environ.get(config.access_token_env)
        if not secret:
            raise ConfigError(f"channel {config.name!r}: environment variable {config.access_token_env} is not set")
    if config.adapter == "shopify":
        return shopify.ShopifyAdapter(config, secret)
    if config.adapter == "rest":
        return rest.RestAdapter(config, secret)
    return files.FilesAdapter(config, secret)
