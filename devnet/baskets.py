"""Order baskets for load: synthetic, or replayed from real order lines.

`read_olist_baskets` reads an `order_items.csv` in the layout of the public
Olist e-commerce dataset (order_id, order_item_id, product_id, seller_id,
shipping_limit_date, price, freight_value): each order becomes a basket of
(SKU, quantity, unit price in cents), a product bought twice counting as a
quantity of two. Prices are parsed from their decimal text without floats.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    price: int
    """Unit price in minor units (cents)."""


Basket = tuple[Line, ...]


def parse_cents(text: str) -> int:
    """'58.90' -> 5890, without going through a float."""
    whole, _, fraction = text.strip().partition(".")
    return int(whole or "0") * 100 + int((fraction + "00")[:2])


def read_olist_baskets(path: Path) -> list[Basket]:
    """Baskets of the orders in an Olist-style `order_items.csv`, in file order."""
    orders: dict[str, dict[str, Line]] = {}
    with path.open(newline="") as source:
        for row in csv.DictReader(source):
            sku = "P-" + row["product_id"][:24]
            lines = orders.setdefault(row["order_id"], {})
            old = lines.get(sku)
            lines[sku] = Line(sku, (old.qty if old else 0) + 1, parse_cents(row["price"]))
    return [tuple(lines.values()) for lines in orders.values()]


def synthetic_baskets(count: int, skus: int = 50) -> Iterator[Basket]:
    """Deterministic baskets of one to three lines over `skus` SKUs."""
    for i in range(count):
        size = 1 + i % 3
        yield tuple(
            Line(f"SKU-{(i * 7 + k * 13) % skus:04d}", 1 + (i + k) % 2, 1000 + 50 * ((i + k) % skus))
            for k in range(size)
        )
