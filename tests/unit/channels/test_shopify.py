"""The Shopify adapter: Shopify's order JSON mapped exactly, and its pages read as Shopify serves them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from channels.fetch import ChannelError
from channels.records import Line, Unfit
from channels.shopify import ShopifyAdapter
from channels.watermark import Watermark
from tests.helpers.channel_server import SHOP_TOKEN, ChannelServer, shopify_order
from tests.unit.channels.conftest import make_config


def make_adapter(base_url: str = "https://example.myshopify.com", token: str = SHOP_TOKEN) -> ShopifyAdapter:
    return ShopifyAdapter(make_config(base_url=base_url, access_token_env="SHOP_TOKEN"), token)


def as_received(order: dict[str, Any]) -> Any:
    """An order as the adapter receives it: JSON numbers as `Decimal`."""
    return json.loads(json.dumps(order), parse_float=Decimal)


def test_an_order_maps_to_exact_integers_with_its_id_flags_and_place() -> None:
    raw = shopify_order(450789469, [("TSHIRT-M", 2, "19.99"), ("BOOK-OMS", 1, "29.00")], shipping="4.90")
    raw["line_items"][0]["total_discount"] = "5.00"
    order = make_adapter().map_order(as_received(raw))
    assert order.order_id == "450789469"
    assert order.currency == "EUR"
    assert order.lines == (Line("TSHIRT-M", 2, 1999, 500), Line("BOOK-OMS", 1, 2900, 0))
    assert order.shipping_charge == 490
    assert (order.region, order.lat, order.lon) == ("LIS", 38_722_300, -9_139_300)
    assert order.customer_ref == "customer:7001"
    assert order.paid and not order.cancelled


def test_taxes_added_when_prices_exclude_them_keep_the_line_gross_to_the_cent() -> None:
    raw = shopify_order(1, [("TSHIRT-M", 3, "10.00")], taxes_included=False, shipping="5.00")
    raw["line_items"][0]["tax_lines"] = [{"price": "6.91", "rate": 0.23, "title": "IVA"}]
    raw["shipping_lines"][0]["tax_lines"] = [{"price": "1.15", "rate": 0.23, "title": "IVA"}]
    order = make_adapter().map_order(as_received(raw))
    (line,) = order.lines
    assert line.unit_price * line.qty - line.discount == 3000 + 691
    assert line.unit_price == 1000 + 231 and line.discount == 2
    assert order.shipping_charge == 615


def test_a_guest_a_cancellation_and_a_pending_payment() -> None:
    raw = shopify_order(2, [("X", 1, "1.00")], customer=None, paid=False, cancelled_at="2026-12-01T10:00:00-05:00")
    raw["shipping_address"] = None
    order = make_adapter().map_order(as_received(raw))
    assert order.customer_ref == "order:2"
    assert order.cancelled and not order.paid
    assert (order.region, order.lat, order.lon) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currency": None}, "missing_currency"),
        ({"currency": "ZZZ"}, "unknown_currency"),
        ({"id": None}, "missing_field"),
        ({"id": [1]}, "malformed"),
        ({"taxes_included": None}, "missing_field"),
        ({"line_items": "none"}, "malformed"),
        ({"updated_at": None}, "missing_field"),
    ],
)
def test_malformed_orders_are_unfit_with_a_reason(change: dict[str, Any], reason: str) -> None:
    raw = shopify_order(3, [("X", 1, "1.00")], updated_at="2026-12-01T10:00:00Z")
    raw.update(change)
    with pytest.raises(Unfit) as refused:
        make_adapter().map_order(as_received(raw))
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"price": "19.999"}, "bad_price"),
        ({"price": 19.99}, "bad_price"),
        ({"quantity": "2"}, "bad_quantity"),
        ({"sku": None}, "missing_sku"),
        ({"total_discount": "-1.00"}, "bad_price"),
    ],
)
def test_malformed_lines_are_unfit_with_a_reason(line: dict[str, Any], reason: str) -> None:
    raw = shopify_order(4, [("X", 1, "1.00")], updated_at="2026-12-01T10:00:00Z")
    raw["line_items"][0].update(line)
    with pytest.raises(Unfit) as refused:
        make_adapter().map_order(as_received(raw))
    assert refused.value.reason == reason


def walk(adapter: ShopifyAdapter, cursor: str) -> tuple[list[str], str]:
    """Every page until caught up: the order ids read and the cursor after."""
    ids = []
    while True:
        page = adapter.fetch(cursor)
        ids += [str(order["id"]) for order in page.orders]
        cursor = page.cursor
        if page.caught_up:
            return ids, cursor


def test_pages_follow_the_link_header_through_429s_and_resume_at_the_watermark() -> None:
    with ChannelServer(seed=3, page_size=3, throttle=0.3) as shop:
        for i in range(10):
            shop.add_shopify(shopify_order(1000 + i, [("X", 1, "1.00")]))
            if i % 2:
                shop.tick()
        adapter = make_adapter(shop.url)
        start = Watermark.start(shop.clock.replace(year=2000)).encode()
        ids, cursor = walk(adapter, start)
        assert ids == [str(1000 + i) for i in range(10)]
        assert shop.throttled > 0
        assert any("page_info=" in path for path in shop.requests)
        shop.tick()
        shop.cancel("shopify", "1003")
        again, _ = walk(adapter, cursor)
        assert again[-1] == "1003"
        assert set(again) <= {"1008", "1009", "1003"}, "only the last instant is read again, then what changed"


def test_a_wrong_token_or_a_next_link_off_the_shop_is_an_error() -> None:
    with ChannelServer() as shop:
        shop.add_shopify(shopify_order(1, [("X", 1, "1.00")]))
        with pytest.raises(ChannelError, match="401"):
            make_adapter(shop.url, token="wrong").fetch(Watermark.start(shop.clock.replace(year=2000)).encode())
    adapter = make_adapter("https://example.myshopify.com")
    with pytest.raises(ChannelError, match="not on the shop"):
        adapter.read_next_link('<https://evil.example/admin/api/2024-10/orders.json?page_info=x>; rel="next"')
    assert adapter.read_next_link(
        '<https://example.myshopify.com/a?page_info=p>; rel="previous", '
        '<https://example.myshopify.com/a?page_info=n>; rel="next"'
    ).endswith("page_info=n")


def test_the_shipping_address_email_and_note_become_the_ship_to_and_notes() -> None:
    raw = shopify_order(3, [("X", 1, "1.00")])
    raw["shipping_address"] = {
        "first_name": "Rui",
        "last_name": "Costa",
        "address1": "Rua Augusta 100",
        "address2": "3 Esq",
        "city": "Lisboa",
        "zip": "1100-053",
        "province_code": "LIS",
        "country_code": "PT",
        "phone": "+351 21 000 0000",
    }
    raw["email"] = "rui@example.pt"
    raw["note"] = "ring twice"
    order = make_adapter().map_order(as_received(raw))
    assert order.ship_to == {
        "name": "Rui Costa",
        "address_lines": ["Rua Augusta 100", "3 Esq"],
        "city": "Lisboa",
        "postcode": "1100-053",
        "region": "LIS",
        "country": "PT",
        "phone": "+351 21 000 0000",
        "email": "rui@example.pt",
    }
    assert order.notes == "ring twice"
    raw["shipping_address"] = {"province_code": "LIS", "country_code": "PT"}
    assert make_adapter().map_order(as_received(raw)).ship_to is None
