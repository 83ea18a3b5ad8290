"""Cleaning: a mapped channel order becomes the payload of the ledger's `order.create`, or a dead letter.

Nothing is guessed: an order without a currency, with an unknown one, with
no lines, a quantity that is not a whole number of units, a price the
currency cannot carry exactly, or a SKU the ledger could not name is
`Unfit` and goes to the dead letters with its reason. What cleaning does
decide, it decides by rule: a channel SKU is mapped through the channel's
`sku_map` (others pass through unchanged; the ledger refuses one not in its
catalogue, and that refusal is dead-lettered too), an order that names no
region gets the channel's, and the customer leaves the puller only as an
HMAC-SHA256 of `<channel>:<customer reference>` under the organisation's
customer key (`omsclient.customers`), which no dictionary reverses; the
ship-to and notes go to the node, which seals them: personal data never
reaches the ledger in clear. The external reference is `<channel name>:<channel's order
id>`, so a re-pulled order is answered with the order it placed before.
"""

from __future__ import annotations

from typing import Any

from channels.config import ID_TEXT, ChannelConfig
from channels.records import ChannelOrder, Unfit
from omsclient.customers import hash_customer

MAX_LINES = 100
"""Most lines the ledger takes in one order."""

MAX_QTY = 1_000_000
"""Most units of one line the ledger takes."""

MAX_AMOUNT = 10**12
"""Largest amount in minor units the ledger takes."""

MICRO = 1_000_000
"""Micro-degrees in a degree."""

MAX_REF_LENGTH = 200
"""Longest external reference made (the ledger takes 256; the payment reference adds a suffix)."""


def make_external_ref(channel: str, order_id: str) -> str:
    """`<channel name>:<channel's order id>`, the ledger's reference of a channel order."""
    return f"{channel}:{order_id}"


def compute_customer_hash(key: bytes, channel: str, customer_ref: str) -> str:
    """The customer as the ledger knows them: the keyed hash of `<channel>:<customer reference>`."""
    return hash_customer(key, f"{channel}:{customer_ref}")


def map_sku(config: ChannelConfig, sku: str) -> str:
    """The ledger's SKU for a channel SKU (`sku_map`, else unchanged); `Unfit` if it is no ledger id."""
    ledger_sku = config.sku_map.get(sku, sku)
    if not ID_TEXT.fullmatch(ledger_sku):
        raise Unfit("bad_sku", f"SKU {sku!r} is not a ledger SKU (1-64 letters, digits, '.', '_', '-'); map it")
    return ledger_sku


def clean_order(config: ChannelConfig, order: ChannelOrder, customer_key: bytes) -> dict[str, Any]:
    """The `order.create` payload of a mapped channel order (its customer hashed under `customer_key`), or
    `Unfit` with the reason it cannot be sent."""
    external_ref = make_external_ref(config.name, order.order_id)
    if len(external_ref) > MAX_REF_LENGTH:
        raise Unfit("bad_order_id", f"order id {order.order_id[:80]!r}... makes a reference over {MAX_REF_LENGTH}")
    if not order.lines:
        raise Unfit("no_lines", "the order has no lines")
    if len(order.lines) > MAX_LINES:
        raise Unfit("too_many_lines", f"{len(order.lines)} lines; the ledger takes at most {MAX_LINES}")
    lines = []
    for index, line in enumerate(order.lines):
        if not 1 <= line.qty <= MAX_QTY:
            raise Unfit("bad_quantity", f"line {index}: quantity {line.qty} is not in [1, {MAX_QTY}]")
        if not 0 <= line.unit_price <= MAX_AMOUNT or not 0 <= line.discount <= line.unit_price * line.qty:
            raise Unfit("bad_price", f"line {index}: price {line.unit_price} x {line.qty}, discount {line.discount}")
        sku = map_sku(config, line.sku)
        lines.append({"sku": sku, "qty": line.qty, "unit_price": line.unit_price, "discount": line.discount})
    if not 0 <= order.shipping_charge <= MAX_AMOUNT:
        raise Unfit("bad_price", f"shipping charge {order.shipping_charge} out of range")
    region = order.region or config.region
    if region is not None and not ID_TEXT.fullmatch(region):
        raise Unfit("bad_region", f"region {region!r} is not a ledger region id")
    delivery: dict[str, Any] = {} if region is None else {"region": region}
    if order.lat is not None and order.lon is not None:
        if not (abs(order.lat) <= 90 * MICRO and abs(order.lon) <= 180 * MICRO):
            raise Unfit("bad_coordinates", f"latitude {order.lat}, longitude {order.lon} (micro-degrees) off the globe")
        delivery.update(lat=order.lat, lon=order.lon)
    payload: dict[str, Any] = {
        "external_ref": external_ref,
        "customer_hash": compute_customer_hash(customer_key, config.name, order.customer_ref),
        "currency": order.currency,
        "lines": lines,
        "payment_terms": config.payment_terms,
        "shipping_charge": order.shipping_charge,
    }
    if delivery:
        payload["delivery"] = delivery
    if order.ship_to is not None:
        payload["ship_to"] = order.ship_to
    if order.notes is not None:
        payload["notes"] = order.notes
    return payload
