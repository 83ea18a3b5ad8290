"""The generic REST adapter and the generic order format: pages by cursor, then by watermark; exact mapping."""

from __future__ import annotations

from typing import Any

import pytest

from channels.fetch import ChannelError
from channels.records import Line, Unfit
from channels.rest import RestAdapter
from channels.watermark import Watermark
from tests.helpers.channel_server import ChannelServer, generic_order
from tests.unit.channels.conftest import make_config


def make_adapter(url: str) -> RestAdapter:
    return RestAdapter(make_config(adapter="rest", url=url, page_size=50, timeout_seconds=5), None)


def test_the_generic_format_maps_exactly() -> None:
    raw = generic_order("A-1", [("TS-M", 2, "19.99")], paid=True, shipping="4.90")
    raw["lines"][0]["discount"] = "1.00"
    order = make_adapter("http://127.0.0.1:1/orders").map_order(raw)
    assert order.order_id == "A-1"
    assert order.lines == (Line("TS-M", 2, 1999, 100),)
    assert order.shipping_charge == 490
    assert (order.region, order.lat, order.lon) == ("MAD", 40_416_800, -3_703_800)
    assert order.customer_ref == "customer:c-A-1"
    assert order.paid and not order.cancelled


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currency": None}, "missing_currency"),
        ({"currency": "EURO"}, "unknown_currency"),
        ({"lines": None}, "missing_field"),
        ({"paid": "yes"}, "malformed"),
        ({"shipping": "4.999"}, "bad_price"),
        ({"delivery": {"lat": "91.0x", "lon": "1"}}, "bad_coordinates"),
        ({"lines": [{"sku": "X", "qty": 1.5, "price": "1.00"}]}, "bad_quantity"),
        ({"lines": [{"sku": "", "qty": 1, "price": "1.00"}]}, "missing_sku"),
    ],
)
def test_malformed_generic_orders_are_unfit(change: dict[str, Any], reason: str) -> None:
    raw = generic_order("A-2", [("X", 1, "1.00")])
    raw.update(change)
    with pytest.raises(Unfit) as refused:
        make_adapter("http://127.0.0.1:1/orders").map_order(raw)
    assert refused.value.reason == reason


def test_pages_by_cursor_through_429s_and_slow_pages_then_from_the_watermark() -> None:
    with ChannelServer(seed=5, page_size=2, throttle=0.25, slow=0.2) as shop:
        for i in range(7):
            shop.add_generic(generic_order(f"G-{i}", [("X", 1, "1.00")]))
            shop.tick()
        adapter = make_adapter(f"{shop.url}/orders")
        cursor = Watermark.start(shop.clock.replace(year=2000)).encode()
        ids = []
        while True:
            page = adapter.fetch(cursor)
            ids += [order["id"] for order in page.orders]
            cursor = page.cursor
            if page.caught_up:
                break
        assert ids == [f"G-{i}" for i in range(7)]
        assert shop.throttled > 0
        assert Watermark.decode(cursor).next is None
        shop.cancel("generic", "G-2")
        page = adapter.fetch(cursor)
        assert [order["id"] for order in page.orders] == ["G-6", "G-2"]


def test_a_client_error_is_not_retried() -> None:
    with ChannelServer() as shop, pytest.raises(ChannelError, match="404"):
        make_adapter(f"{shop.url}/nothing").fetch(Watermark.start(shop.clock).encode())
