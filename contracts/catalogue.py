"""The catalogue (SKUs) and the distribution points (locations).

A SKU has a price in integer minor units, a currency, a tax class and is
physical (needs stock) or virtual (ships at once, no stock). A location is a
store or a warehouse with coordinates in micro-degrees, a region (for tax),
the organisation that owns it (and issues its invoices), whether it ships
online orders, whether customers may collect there, a daily capacity (most
fulfilments allocated to it per block-time day, 0 for no limit) and a
priority (lower is preferred by allocation).

An organisation registers at most `catalogue.max_locations_per_org`
locations (a governed setting; records are never deleted, so a deactivated
location still counts): what one store key can make every node store is
bounded. Allocation never walks the locations (`contracts.allocation`), so
their number does not weigh on an order either.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.payload import (
    MAX_AMOUNT,
    bad,
    boolean,
    choice,
    ident,
    integer,
    payload,
    read_payload,
    text,
)
from contracts.records import Location, Sku
from contracts.roles import reaches_every_org, roles_for
from contracts.settings import Setting
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("sku.upsert", "location.upsert")

LOCATION_TYPES = ("store", "warehouse")
"""Kinds of distribution point."""

VIRTUAL_LOCATION = "virtual"
"""Pseudo-location under which virtual goods are journalled (never stocked)."""

MICRO_DEGREES = 1_000_000
"""Coordinates are integer micro-degrees."""

SETTINGS = (
    Setting(
        integer(
            "catalogue.max_locations_per_org",
            1,
            10_000,
            default=1_000,
            doc="most locations one organisation may register",
        ),
        governed=True,
    ),
)
"""The configuration key of this module (`contracts.settings`)."""

PAYLOADS = {
    "sku.upsert": payload(
        ident("sku"),
        integer("price", 0, MAX_AMOUNT, doc="unit price in minor units"),
        text("currency", doc="ISO 4217 code such as EUR"),
        ident("tax_class", doc="a class of `tax.rates`"),
        text("name", default=""),
        boolean("virtual", default=False, doc="ships at once, holds no stock"),
        boolean("active", default=True),
    ),
    "location.upsert": payload(
        ident("location"),
        choice("type", LOCATION_TYPES),
        ident("region", doc="for tax rates"),
        integer("lat", -90 * MICRO_DEGREES, 90 * MICRO_DEGREES, doc="micro-degrees"),
        integer("lon", -180 * MICRO_DEGREES, 180 * MICRO_DEGREES, doc="micro-degrees"),
        ident("org", required=False, doc="owning organisation (the signer's if absent)"),
        boolean("ships_online", default=True),
        boolean("pickup_allowed", default=False),
        integer("daily_capacity", 0, 10**9, default=0, doc="fulfilments per day, 0 = unlimited"),
        integer("priority", 0, 10**6, default=100, doc="lower is preferred by allocation"),
        text("name", default=""),
        boolean("active", default=True),
    ),
}
"""The payload of each tx kind of this module."""


def get_sku(state: StateView, sku: str) -> Sku | None:
    return state.get(keys.sku_key(sku))


def get_location(state: StateView, location: str) -> Location | None:
    return state.get(keys.location_key(location))


def require_sku(state: StateView, sku: str) -> Sku:
    record = get_sku(state, sku)
    if record is None or not record["active"]:
        raise Rejected("unknown_sku", f"SKU {sku} is not in the catalogue")
    return record


def require_known_location(state: StateView, location: str) -> Location:
    """A location registered once, active or deactivated since (what was sent to it, or from it, still is)."""
    record = get_location(state, location)
    if record is None:
        raise Rejected("unknown_location", f"location {location} does not exist")
    return record


def require_location(state: StateView, location: str) -> Location:
    """An active location."""
    record = require_known_location(state, location)
    if not record["active"]:
        raise Rejected("unknown_location", f"location {location} does not exist")
    return record


def require_location_access(ctx: TxContext, location: Location) -> None:
    """A role that reaches every organisation for this kind (`contracts.roles`) acts anywhere; anyone else only at
    locations of its own organisation."""
    if reaches_every_org(ctx.signer.roles, ctx.kind):
        return
    if ctx.signer.org != location["org"]:
        raise Rejected("forbidden", f"{ctx.signer.id} does not act for location {location['location']}")


def _count_location(state: StateView, ctx: TxContext, org: str, delta: int) -> None:
    """Count a location in (delta 1) or out (-1) of `org`'s; one more than the setting allows is refused."""
    key = keys.org_locations_key(org)
    count = int(state.get(key) or 0) + delta
    limit = int(ctx.config["catalogue.max_locations_per_org"])
    if delta > 0 and count > limit:
        raise Rejected("too_many_locations", f"organisation {org} has {limit} locations, the most it may register")
    state.put(key, count)


def process_sku_upsert(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Create or change a SKU."""
    fields = read_payload(PAYLOADS["sku.upsert"], tx.payload)
    sku = fields["sku"]
    currency = fields["currency"]
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise bad("currency must be an ISO 4217 code such as EUR")
    record: Sku = {
        "sku": sku,
        "name": fields["name"],
        "price": fields["price"],
        "currency": currency,
        "tax_class": fields["tax_class"],
        "virtual": fields["virtual"],
        "active": fields["active"],
    }
    previous = get_sku(state, sku)
    state.put(keys.sku_key(sku), record)
    return {"sku": sku, "created": previous is None}


def process_location_upsert(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Create or change a location; a store identity may only register its own organisation's locations."""
    fields = read_payload(PAYLOADS["location.upsert"], tx.payload)
    location = fields["location"]
    if location == VIRTUAL_LOCATION:
        raise bad(f"{VIRTUAL_LOCATION} is reserved for virtual goods")
    org = fields["org"] or ctx.signer.org
    if not reaches_every_org(ctx.signer.roles, ctx.kind) and org != ctx.signer.org:
        raise Rejected("forbidden", "a store may only register locations of its own organisation")
    if not ctx.membership.has_org(org):
        raise Rejected("unknown_org", f"organisation {org} is not a member")
    previous = get_location(state, location)
    if previous is not None:
        require_location_access(ctx, previous)
    if previous is None or previous["org"] != org:
        _count_location(state, ctx, org, 1)
    if previous is not None and previous["org"] != org:
        _count_location(state, ctx, previous["org"], -1)
    record: Location = {
        "location": location,
        "name": fields["name"],
        "type": fields["type"],
        "org": org,
        "region": fields["region"],
        "lat": fields["lat"],
        "lon": fields["lon"],
        "ships_online": fields["ships_online"],
        "pickup_allowed": fields["pickup_allowed"],
        "daily_capacity": fields["daily_capacity"],
        "priority": fields["priority"],
        "active": fields["active"],
    }
    state.put(keys.location_key(location), record)
    return {"location": location, "created": previous is None}
