"""Cleaning: a mapped order becomes exactly the `order.create` payload, or a dead letter with its reason."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import Any

import pytest

from channels.cleaning import clean_order as clean
from channels.config import ChannelConfig
from channels.records import ChannelOrder, Line, Unfit
from tests.unit.channels.conftest import make_config

ORDER = ChannelOrder(
    order_id="1001",
    currency="EUR",
    lines=(Line("TS-M", 2, 1999, 100), Line("BOOK-OMS", 1, 2900, 0)),
    shipping_charge=490,
    customer_ref="customer:77",
    region=None,
    lat=38_722_300,
    lon=-9_139_300,
    paid=True,
    cancelled=False,
    updated_at="2026-12-01T10:00:00Z",
)
CONFIG = make_config(name="webshop", region="LIS", sku_map={"TS-M": "TSHIRT-M"})
KEY = b"the organisation's customer key"


def clean_order(config: ChannelConfig, order: ChannelOrder) -> dict[str, Any]:
    return clean(config, order, KEY)


def test_an_order_becomes_the_ledger_payload() -> None:
    assert clean_order(CONFIG, ORDER) == {
        "external_ref": "webshop:1001",
        "customer_hash": hmac.new(KEY, b"webshop:customer:77", hashlib.sha256).hexdigest(),
        "currency": "EUR",
        "lines": [
            {"sku": "TSHIRT-M", "qty": 2, "unit_price": 1999, "discount": 100},
            {"sku": "BOOK-OMS", "qty": 1, "unit_price": 2900, "discount": 0},
        ],
        "payment_terms": "prepaid",
        "shipping_charge": 490,
        "delivery": {"region": "LIS", "lat": 38_722_300, "lon": -9_139_300},
    }


def test_the_order_region_wins_over_the_channel_default() -> None:
    assert clean_order(CONFIG, replace(ORDER, region="MAD"))["delivery"]["region"] == "MAD"
    bare = make_config(name="webshop")
    assert "delivery" not in clean_order(bare, replace(ORDER, lat=None, lon=None))


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (replace(ORDER, lines=()), "no_lines"),
        (replace(ORDER, lines=(Line("X", 0, 1, 0),)), "bad_quantity"),
        (replace(ORDER, lines=(Line("X", 1_000_001, 1, 0),)), "bad_quantity"),
        (replace(ORDER, lines=(Line("X", 1, 100, 101),)), "bad_price"),
        (replace(ORDER, lines=(Line("bad sku", 1, 100, 0),)), "bad_sku"),
        (replace(ORDER, lines=(Line("X", 1, 1, 0),) * 101), "too_many_lines"),
        (replace(ORDER, region="no such region!"), "bad_region"),
        (replace(ORDER, lat=91_000_000), "bad_coordinates"),
        (replace(ORDER, order_id="9" * 300), "bad_order_id"),
    ],
)
def test_what_cannot_be_sent_is_unfit(order: ChannelOrder, reason: str) -> None:
    with pytest.raises(Unfit) as refused:
        clean_order(CONFIG, order)
    assert refused.value.reason == reason


def test_the_customer_hash_is_keyed_so_a_dictionary_without_the_key_finds_nothing() -> None:
    hashed = clean_order(CONFIG, ORDER)["customer_hash"]
    assert hashed != hashlib.sha256(b"webshop:customer:77").hexdigest()
    assert hashed != clean(CONFIG, ORDER, b"another organisation's key")["customer_hash"]
    assert hashed == clean_order(CONFIG, replace(ORDER, order_id="1002"))["customer_hash"]


def test_the_ship_to_and_notes_go_to_the_node_as_the_channel_mapped_them() -> None:
    ship_to = {"name": "Rui Costa", "address_lines": ["Rua Augusta 1"], "city": "Lisboa", "country": "PT"}
    payload = clean_order(CONFIG, replace(ORDER, ship_to=ship_to, notes="ring twice"))
    assert (payload["ship_to"], payload["notes"]) == (ship_to, "ring twice")
    assert "ship_to" not in clean_order(CONFIG, ORDER) and "notes" not in clean_order(CONFIG, ORDER)
