"""Shopify: orders from the Admin REST API, exactly as Shopify documents it.

A walk asks `GET {base_url}/admin/api/{api_version}/orders.json?status=any
&limit=250&updated_at_min=<since>&order=updated_at+asc` with the header
`X-Shopify-Access-Token`, then follows the `Link` header's `rel="next"` URL
(cursor pagination: that URL carries `page_info` and `limit` alone) until a
page has none (`channels.watermark`). A next URL on another host than
`base_url` is refused: the access token goes only to the shop. 429 answers
are obeyed with their `Retry-After` (`channels.fetch`).

An order maps by its numeric `id` (the external reference is
`<channel>:<id>`), `currency`, `line_items[]` (`sku`, `quantity`, `price` and
`total_discount` as decimal strings, `tax_lines[]`), `shipping_lines[]`,
`taxes_included`, `financial_status` (`paid`: the ledger order is marked
paid), `cancelled_at` (set: the ledger order is cancelled), `updated_at`,
`customer.id` and `shipping_address` (`province_code` as the region,
`latitude`/`longitude`; with `name`, `address1`, `address2`, `city`, `zip`,
`country_code`, `phone` and the order's `email` it is the order's ship-to,
and the order's `note` its notes: both sealed by the node, never in clear on
the ledger). The ledger prices tax included: when
`taxes_included` is false, each line's `tax_lines` are added to its unit
price, rounded up to a whole minor unit per unit, and the rounding taken off
as discount, so the line's gross is Shopify's to the cent. A guest order
(no `customer`) is its own customer, `order:<id>`.

Config keys: `base_url` (`https://SHOP.myshopify.com`), `api_version`
(default `2024-10`), `access_token_env` (required), `timeout_seconds`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.config import ChannelConfig, ConfigError, read_text, require_text
from channels.fetch import ChannelError, HttpAdapter, get_json
from channels.mapping import (
    read_bool,
    read_id,
    read_list,
    read_map,
    read_text_field,
    require_currency,
    require_field,
)
from channels.money import AmountError, parse_amount, parse_degrees
from channels.records import ChannelOrder, Line, Page, Unfit
from channels.watermark import Watermark

KEYS = frozenset({"base_url", "api_version", "timeout_seconds"})
"""The adapter's own config keys."""

DEFAULT_API_VERSION = "2024-10"

PAGE_LIMIT = 250
"""Orders per page asked of Shopify (its maximum)."""


class ShopifyAdapter(HttpAdapter):
    """Pages of one shop's orders, and the mapping of one Shopify order."""

    def __init__(self, config: ChannelConfig, secret: str | None) -> None:
        base_url = require_text(config.settings, "base_url", config.name).rstrip("/")
        if urlsplit(base_url).scheme not in ("https", "http") or not urlsplit(base_url).netloc:
            raise ConfigError(f"channel {config.name!r}: base_url must be an http(s) URL, not {base_url!r}")
        if secret is None:
            raise ConfigError(f"channel {config.name!r}: a Shopify channel needs access_token_env")
        version = read_text(config.settings, "api_version", config.name, default=DEFAULT_API_VERSION)
        self.base_url = base_url
        self.orders_url = f"{base_url}/admin/api/{version}/orders.json"
        super().__init__(config, {"X-Shopify-Access-Token": secret})

    def fetch(self, cursor: str) -> Page:
        mark = Watermark.decode(cursor)
        if mark.next is None:
            params = {"status": "any", "limit": PAGE_LIMIT, "updated_at_min": mark.since, "order": "updated_at asc"}
            body, headers = get_json(self.client, self.orders_url, params=params)
        else:
            body, headers = get_json(self.client, mark.next)
        orders = self.read_orders(body, self.orders_url)
        next_url = self.read_next_link(headers.get("link", ""))
        return Page(orders=orders, cursor=mark.advance(orders, next_url).encode(), caught_up=next_url is None)

    def read_next_link(self, link: str) -> str | None:
        """The `rel="next"` URL of a `Link` header, if it points at the shop."""
        for part in link.split(","):
            target, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                url = target.strip().removeprefix("<").removesuffix(">")
                if urlsplit(url).netloc != urlsplit(self.base_url).netloc:
                    raise ChannelError(f"next page {url!r} is not on the shop {self.base_url}")
                return url
        return None

    def map_order(self, raw: Any) -> ChannelOrder:
        order = read_map(raw, "order")
        order_id = read_id(order.get("id"), "id")
        currency = require_currency(order.get("currency"))
        taxes_included = read_bool(require_field(order, "taxes_included"), "taxes_included")
        try:
            lines = tuple(
                map_line(read_map(item, f"line_items[{i}]"), currency, taxes_included, i)
                for i, item in enumerate(read_list(require_field(order, "line_items"), "line_items"))
            )
            shipping = sum(
                map_shipping(read_map(item, f"shipping_lines[{i}]"), currency, taxes_included, i)
                for i, item in enumerate(read_list(order.get("shipping_lines") or [], "shipping_lines"))
            )
        except AmountError as exc:
            raise Unfit("bad_price", str(exc)) from None
        customer = order.get("customer")
        customer_id = read_map(customer, "customer").get("id") if customer is not None else None
        customer_ref = f"order:{order_id}" if customer_id is None else f"customer:{read_id(customer_id, 'customer.id')}"
        address = read_map(order.get("shipping_address") or {}, "shipping_address")
        lat, lon = address.get("latitude"), address.get("longitude")
        try:
            coordinates = (parse_degrees(lat, "latitude"), parse_degrees(lon, "longitude")) if lat and lon else None
        except AmountError as exc:
            raise Unfit("bad_coordinates", str(exc)) from None
        return ChannelOrder(
            order_id=order_id,
            currency=currency,
            lines=lines,
            shipping_charge=shipping,
            customer_ref=customer_ref,
            region=read_text_field(address.get("province_code"), "shipping_address.province_code"),
            lat=None if coordinates is None else coordinates[0],
            lon=None if coordinates is None else coordinates[1],
            paid=order.get("financial_status") == "paid",
            cancelled=order.get("cancelled_at") is not None,
            updated_at=read_text_field(require_field(order, "updated_at"), "updated_at") or "",
            ship_to=map_ship_to(address, order.get("email")),
            notes=read_text_field(order.get("note"), "note"),
        )


SHIPPING_ADDRESS_TEXT = (
    "name",
    "first_name",
    "last_name",
    "address1",
    "address2",
    "city",
    "zip",
    "province_code",
    "country_code",
    "phone",
)
"""The text fields of a Shopify `shipping_address` that its ship-to takes."""


def map_ship_to(address: dict[str, Any], email: Any) -> dict[str, Any] | None:
    """The ledger's ship-to of a Shopify `shipping_address` (None when it names no street, city or country)."""
    text = {key: read_text_field(address.get(key), f"shipping_address.{key}") for key in SHIPPING_ADDRESS_TEXT}
    lines = [line for line in (text["address1"], text["address2"]) if line]
    if not lines or text["city"] is None or text["country_code"] is None:
        return None
    name = text["name"] or " ".join(part for part in (text["first_name"], text["last_name"]) if part) or None
    ship_to = {
        "name": name,
        "address_lines": lines,
        "city": text["city"],
        "postcode": text["zip"],
        "region": text["province_code"],
        "country": text["country_code"],
        "phone": text["phone"],
        "email": read_text_field(email, "email"),
    }
    return {key: value for key, value in ship_to.items() if value is not None}


def sum_tax(item: dict[str, Any], currency: str, where: str) -> int:
    """The minor units of an item's `tax_lines`."""
    taxes = read_list(item.get("tax_lines") or [], f"{where}.tax_lines")
    return sum(
        parse_amount(read_map(tax, f"{where}.tax_lines[{i}]").get("price"), currency, f"{where}.tax_lines[{i}].price")
        for i, tax in enumerate(taxes)
    )


def map_line(item: dict[str, Any], currency: str, taxes_included: bool, index: int) -> Line:
    """One `line_items[]` entry as a ledger line, tax included (see the module)."""
    where = f"line_items[{index}]"
    sku = item.get("sku")
    if type(sku) is not str or not sku.strip():
        raise Unfit("missing_sku", f"{where} has no SKU")
    qty = item.get("quantity")
    if type(qty) is not int:
        raise Unfit("bad_quantity", f"{where}.quantity must be a whole number, not {qty!r}")
    price = parse_amount(item.get("price"), currency, f"{where}.price")
    discount = parse_amount(item.get("total_discount", "0"), currency, f"{where}.total_discount")
    if taxes_included or qty <= 0:
        return Line(sku=sku, qty=qty, unit_price=price, discount=discount)
    tax = sum_tax(item, currency, where)
    tax_per_unit = -(-tax // qty)
    return Line(sku=sku, qty=qty, unit_price=price + tax_per_unit, discount=discount + tax_per_unit * qty - tax)


def map_shipping(item: dict[str, Any], currency: str, taxes_included: bool, index: int) -> int:
    """One `shipping_lines[]` entry in minor units, after its discounts, tax included."""
    where = f"shipping_lines[{index}]"
    price = item.get("discounted_price", item.get("price"))
    charge = parse_amount(price, currency, f"{where}.price")
    return charge if taxes_included else charge + sum_tax(item, currency, where)
