"""The channels config file: one `[[channels]]` table per channel, read strictly.

```toml
[[channels]]
name = "webshop"                 # unique; the external reference of its orders is "webshop:<order id>"
adapter = "shopify"              # shopify, rest or files
poll_seconds = 60                # how often a caught-up channel is pulled again
region = "LIS"                   # the delivery region of an order that names none
since = "30d"                    # where a new channel starts: an ISO time or a duration back from now
sku_map = { "TS-M" = "TSHIRT-M" }   # channel SKU -> ledger SKU; others pass through unchanged
base_url = "https://example.myshopify.com"    # the adapter's own keys (`channels.adapters`)
access_token_env = "SHOPIFY_TOKEN"            # secrets never in the file: the variable that holds it
customer_key_env = "OMS_CUSTOMER_KEY"         # the organisation's customer key (the default variable)
```

Every key is checked here or by the channel's adapter; an unknown key, a
wrong type or a duplicate name is a `ConfigError` naming the channel and the
key, so a typo stops the puller at start rather than pulling with a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from omsclient.customers import CUSTOMER_KEY_ENV

ID_TEXT = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A channel name, region or SKU: the ledger's id characters."""

DURATION = re.compile(r"([0-9]{1,6})([smhd])")
"""A duration back from now: `30d`, `12h`, `15m`, `90s`."""

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

COMMON_KEYS = frozenset(
    {
        "name",
        "adapter",
        "poll_seconds",
        "sku_map",
        "region",
        "since",
        "access_token_env",
        "customer_key_env",
        "payment_terms",
    }
)
"""Keys every channel may have; the others belong to its adapter."""

DEFAULT_SINCE = "30d"
"""Where a new channel starts by default: orders of the last 30 days, so those already waiting are pulled."""

PaymentTerms = Literal["prepaid", "on_account"]


class ConfigError(ValueError):
    """A config file that cannot be run as written."""


@dataclass(frozen=True)
class ChannelConfig:
    """One channel of the config file."""

    name: str
    """Unique among the channels; the prefix of its orders' external references."""
    adapter: str
    """`shopify`, `rest` or `files`."""
    poll_seconds: float
    """Seconds between pulls of a caught-up channel."""
    sku_map: Mapping[str, str]
    """Channel SKU -> ledger SKU; an SKU not in it passes through unchanged."""
    region: str | None
    """The delivery region of an order that names none."""
    since: str
    """Where a new channel starts: an ISO time, or a duration back from now (`30d`)."""
    access_token_env: str | None
    """The environment variable that holds the channel's secret, if it needs one."""
    payment_terms: PaymentTerms
    """The ledger's terms for the channel's orders: `prepaid` (released once the channel says paid) or
    `on_account`."""
    settings: Mapping[str, Any]
    """The adapter's own keys, checked by the adapter."""
    customer_key_env: str = CUSTOMER_KEY_ENV
    """The environment variable that holds the organisation's customer key (`omsclient.customers`)."""


def where(name: str, key: str) -> str:
    """Where in the config a problem is, for its message."""
    return f"channel {name!r}: {key}"


def read_number(table: Mapping[str, Any], key: str, default: float, name: str, low: float, high: float) -> float:
    """A number key of a table, within its bounds (its default if absent)."""
    value = table.get(key, default)
    if type(value) not in (int, float) or not low <= value <= high:
        raise ConfigError(f"{where(name, key)} must be a number in [{low}, {high}], not {value!r}")
    return float(value)


def read_text(table: Mapping[str, Any], key: str, name: str, *, default: str | None = None) -> str | None:
    """An optional string key of a table."""
    value = table.get(key, default)
    if value is not None and (type(value) is not str or not value or len(value) > 2000):
        raise ConfigError(f"{where(name, key)} must be a non-empty string, not {value!r}")
    return value


def require_text(table: Mapping[str, Any], key: str, name: str) -> str:
    """A string key a table must have."""
    value = read_text(table, key, name)
    if value is None:
        raise ConfigError(f"{where(name, key)} is required")
    return value


def read_sku_map(table: Mapping[str, Any], name: str) -> dict[str, str]:
    """The `sku_map` table: channel SKU to a ledger SKU id."""
    value = table.get("sku_map", {})
    if not isinstance(value, dict) or len(value) > 100_000:
        raise ConfigError(f"{where(name, 'sku_map')} must be a table of channel SKU = ledger SKU")
    for channel_sku, ledger_sku in value.items():
        if type(ledger_sku) is not str or not ID_TEXT.fullmatch(ledger_sku) or len(channel_sku) > 256:
            raise ConfigError(f"{where(name, 'sku_map')}: {channel_sku!r} must map to a ledger SKU, not {ledger_sku!r}")
    return dict(value)


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO time (UTC if it names no zone) or a duration back from `now`, as an aware UTC time."""
    duration = DURATION.fullmatch(text)
    if duration:
        return now - timedelta(seconds=int(duration[1]) * UNITS[duration[2]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"since must be an ISO time or a duration such as 30d, not {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def read_channel(table: Any, known_keys: Mapping[str, frozenset[str]]) -> ChannelConfig:
    """One `[[channels]]` table; `known_keys` names each adapter's own keys."""
    if not isinstance(table, dict):
        raise ConfigError("each [[channels]] entry must be a table")
    name = table.get("name")
    if type(name) is not str or not ID_TEXT.fullmatch(name):
        raise ConfigError(f"channel name must be 1-64 letters, digits, '.', '_' or '-', not {name!r}")
    adapter = table.get("adapter")
    if type(adapter) is not str or adapter not in known_keys:
        raise ConfigError(f"{where(name, 'adapter')} must be one of {', '.join(sorted(known_keys))}, not {adapter!r}")
    unknown = set(table) - COMMON_KEYS - known_keys[adapter]
    if unknown:
        raise ConfigError(f"channel {name!r}: unknown key(s) {', '.join(sorted(unknown))} for adapter {adapter}")
    region = read_text(table, "region", name)
    if region is not None and not ID_TEXT.fullmatch(region):
        raise ConfigError(f"{where(name, 'region')} must be a ledger region id, not {region!r}")
    since = read_text(table, "since", name, default=DEFAULT_SINCE) or DEFAULT_SINCE
    parse_since(since, datetime.now(UTC))
    terms = table.get("payment_terms", "prepaid")
    if terms not in ("prepaid", "on_account"):
        raise ConfigError(f"{where(name, 'payment_terms')} must be prepaid or on_account, not {terms!r}")
    return ChannelConfig(
        name=name,
        adapter=adapter,
        poll_seconds=read_number(table, "poll_seconds", 60, name, 0.05, 86400),
        sku_map=read_sku_map(table, name),
        region=region,
        since=since,
        access_token_env=read_text(table, "access_token_env", name),
        customer_key_env=read_text(table, "customer_key_env", name, default=CUSTOMER_KEY_ENV) or CUSTOMER_KEY_ENV,
        payment_terms=terms,
        settings={key: value for key, value in table.items() if key not in COMMON_KEYS},
    )


def load_config(path: Path, known_keys: Mapping[str, frozenset[str]]) -> list[ChannelConfig]:
    """Every channel of a config file, checked; `ConfigError` says what is wrong and where."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if set(document) != {"channels"} or not isinstance(document["channels"], list) or not document["channels"]:
        raise ConfigError(f"{path} must hold one or more [[channels]] tables and nothing else")
    channels = [read_channel(table, known_keys) for table in document["channels"]]
    names = [channel.name for channel in channels]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"channel names must be unique: {', '.join(duplicated)}")
    return channels
