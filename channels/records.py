"""What an adapter hands the puller: a page of raw channel orders, and one order mapped to the ledger's terms.

An adapter knows one channel's format; everything after it (cleaning,
sending, state) knows only these records. `ChannelOrder` already holds exact
integers (minor units, micro-degrees) and the channel's own SKUs; cleaning
turns it into the payload of `order.create`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Unfit(Exception):
    """A channel order that cannot be sent as it is: it goes to the dead letters with `reason`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        """A machine-readable cause (`missing_field`, `bad_price`, `unknown_currency`, ...)."""
        self.message = message


@dataclass(frozen=True)
class Line:
    """One line of a channel order."""

    sku: str
    """The channel's SKU (mapped to the ledger's by cleaning)."""
    qty: int
    """Units ordered, at least 1."""
    unit_price: int
    """Price of one unit in minor units, tax included (as the ledger prices)."""
    discount: int
    """Minor units off the whole line."""


@dataclass(frozen=True)
class ChannelOrder:
    """One channel order mapped to the ledger's terms, before cleaning."""

    order_id: str
    """The channel's id of the order (Shopify: its numeric `id`)."""
    currency: str
    """ISO 4217 code, as the channel sent it."""
    lines: tuple[Line, ...]
    shipping_charge: int
    """Minor units, tax included."""
    customer_ref: str
    """The channel's reference of the customer (hashed before it leaves the puller; never personal data)."""
    region: str | None
    """The delivery region, if the order names one (else the channel's configured `region`)."""
    lat: int | None
    """Delivery latitude in micro-degrees, with `lon`."""
    lon: int | None
    paid: bool
    """The channel says the order is paid."""
    cancelled: bool
    """The channel says the order is cancelled."""
    updated_at: str
    """The channel's time of the order's last change, as it wrote it."""
    ship_to: dict[str, Any] | None = None
    """Where the goods go and whom to reach (the ledger's ship-to keys), if the channel says; the node seals it."""
    notes: str | None = None
    """The customer's notes, if any (sealed with the ship-to)."""


@dataclass(frozen=True)
class Page:
    """One page fetched after a cursor."""

    orders: list[Any]
    """The channel's orders as it sent them (JSON values), oldest change first."""
    cursor: str
    """Where the next page starts; saved once every order of this page is committed or dead-lettered."""
    caught_up: bool
    """Nothing more is waiting after this page (the puller sleeps until its next poll)."""
