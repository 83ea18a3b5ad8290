"""The generic channel order format, read by the `rest` and `files` adapters.

```json
{"id": "A-1001", "currency": "EUR", "updated_at": "2026-12-01T10:00:00Z", "customer_ref": "c-17",
 "lines": [{"sku": "TS-M", "qty": 2, "price": "19.99", "discount": "0.00"}],
 "shipping": "4.90", "delivery": {"region": "LIS", "lat": "38.7223", "lon": "-9.1393"},
 "paid": true, "cancelled": false}
```

`id`, `currency`, `updated_at` and `lines` (each `sku`, `qty` a whole
number, `price` of one unit tax included as a decimal string) are required;
`discount` (off the whole line), `shipping`, `delivery`, `customer_ref` (a
guest order is its own customer, `order:<id>`), `paid`, `cancelled`,
`ship_to` (a map of the ledger's ship-to keys: `name`, `address_lines`,
`city`, `postcode`, `region`, `country`, `phone`, `email`) and `notes` are
optional; the ship-to and notes are sealed by the node, never in clear on
the ledger. Amounts are decimal strings in the order's currency, read exactly
(`channels.money`).
"""

from __future__ import annotations

from typing import Any

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
from channels.records import ChannelOrder, Line, Unfit


def map_generic_order(raw: Any) -> ChannelOrder:
    """One order of the generic format as a `ChannelOrder`, or `Unfit` naming what is wrong."""
    order = read_map(raw, "order")
    order_id = read_id(order.get("id"), "id")
    currency = require_currency(order.get("currency"))
    updated_at = read_text_field(require_field(order, "updated_at"), "updated_at") or ""
    delivery = read_map(order.get("delivery") or {}, "delivery")
    try:
        lines = tuple(
            map_generic_line(read_map(item, f"lines[{i}]"), currency, i)
            for i, item in enumerate(read_list(require_field(order, "lines"), "lines"))
        )
        shipping = parse_amount(order.get("shipping", "0"), currency, "shipping")
    except AmountError as exc:
        raise Unfit("bad_price", str(exc)) from None
    lat, lon = delivery.get("lat"), delivery.get("lon")
    try:
        coordinates = None if lat is None or lon is None else (parse_degrees(lat, "lat"), parse_degrees(lon, "lon"))
    except AmountError as exc:
        raise Unfit("bad_coordinates", str(exc)) from None
    customer = order.get("customer_ref")
    return ChannelOrder(
        order_id=order_id,
        currency=currency,
        lines=lines,
        shipping_charge=shipping,
        customer_ref=f"order:{order_id}" if customer is None else f"customer:{read_id(customer, 'customer_ref')}",
        region=read_text_field(delivery.get("region"), "delivery.region"),
        lat=None if coordinates is None else coordinates[0],
        lon=None if coordinates is None else coordinates[1],
        paid=read_bool(order.get("paid", False), "paid"),
        cancelled=read_bool(order.get("cancelled", False), "cancelled"),
        updated_at=updated_at,
        ship_to=None if order.get("ship_to") is None else read_map(order["ship_to"], "ship_to"),
        notes=read_text_field(order.get("notes"), "notes"),
    )


def map_generic_line(item: dict[str, Any], currency: str, index: int) -> Line:
    """One `lines[]` entry of the generic format."""
    where = f"lines[{index}]"
    sku = item.get("sku")
    if type(sku) is not str or not sku.strip():
        raise Unfit("missing_sku", f"{where} has no SKU")
    qty = item.get("qty")
    if type(qty) is not int:
        raise Unfit("bad_quantity", f"{where}.qty must be a whole number, not {qty!r}")
    return Line(
        sku=sku,
        qty=qty,
        unit_price=parse_amount(item.get("price"), currency, f"{where}.price"),
        discount=parse_amount(item.get("discount", "0"), currency, f"{where}.discount"),
    )
