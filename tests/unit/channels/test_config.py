"""The channels config: read strictly, so a typo stops the puller at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.adapters import ADAPTER_KEYS, make_adapter
from channels.config import ConfigError, load_config, parse_since

GOOD = """
[[channels]]
name = "webshop"
adapter = "shopify"
base_url = "https://example.myshopify.com"
access_token_env = "SHOP_TOKEN"
poll_seconds = 30
region = "LIS"
since = "7d"
sku_map = { "TS-M" = "TSHIRT-M" }

[[channels]]
name = "marketplace"
adapter = "rest"
url = "https://market.example/orders"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return path


def test_a_config_reads_every_key(tmp_path: Path) -> None:
    shop, market = load_config(write(tmp_path, GOOD), ADAPTER_KEYS)
    assert (shop.name, shop.adapter, shop.poll_seconds, shop.region, shop.since) == (
        "webshop",
        "shopify",
        30,
        "LIS",
        "7d",
    )
    assert shop.sku_map == {"TS-M": "TSHIRT-M"} and shop.settings["base_url"] == "https://example.myshopify.com"
    assert (market.poll_seconds, market.since, market.payment_terms) == (60, "30d", "prepaid")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("poll_secs = 5\n", "unknown key"),
        ('adapter = "ftp"\n', "adapter must be one of"),
        ('since = "yesterday"\n', "since must be"),
        ('poll_seconds = "5"\n', "poll_seconds must be a number"),
        ('sku_map = { "A" = 1 }\n', "sku_map"),
    ],
)
def test_mistakes_are_refused_by_name(tmp_path: Path, change: str, message: str) -> None:
    text = '[[channels]]\nname = "m"\nurl = "https://x.example/o"\n' + (
        change if "adapter" in change else 'adapter = "rest"\n' + change
    )
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), ADAPTER_KEYS)


def test_duplicate_names_and_a_missing_secret_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unique"):
        load_config(write(tmp_path, GOOD.replace('"marketplace"', '"webshop"')), ADAPTER_KEYS)
    shop, _ = load_config(write(tmp_path, GOOD), ADAPTER_KEYS)
    monkeypatch.delenv("SHOP_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="SHOP_TOKEN is not set"):
        make_adapter(shop)


def test_since_is_a_time_or_a_duration_back() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-11-01T00:00:00", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T00:00:00+01:00", now) == datetime(2026, 10, 31, 23, tzinfo=UTC)
