"""Channel configs for the adapters' tests."""

from __future__ import annotations

from typing import Any

from channels.adapters import ADAPTER_KEYS
from channels.config import ChannelConfig, read_channel


def make_config(**table: Any) -> ChannelConfig:
    """A channel as its `[[channels]]` table says (name `shop`, adapter `shopify` unless given)."""
    return read_channel({"name": "shop", "adapter": "shopify", **table}, ADAPTER_KEYS)
