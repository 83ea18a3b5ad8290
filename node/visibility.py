"""Which organisations a ledger record belongs to, for reads that are private by organisation.

An order belongs to the organisation of the channel that placed it and to the
organisation of every location serving it (its fulfilments); a fulfilment to
the organisation owning its location and to everyone its order belongs to; a
stock record or a journal entry to the organisation owning its location; a
transfer to the organisations of both its locations; an invoice or credit
note to its issuer and to everyone its order belongs to, and a return to
everyone its order belongs to.
Operators and auditors read all (`node.tokens.Principal.sees_all`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import keys

Read = Callable[[str], Any]
"""Reads one decoded world-state value by key (None if absent)."""


def get_location_org(read: Read, location: str) -> str | None:
    record = read(keys.location_key(location))
    return None if record is None else str(record["org"])


def compute_order_orgs(read: Read, order: dict[str, Any]) -> list[str]:
    """The organisations an order (as stored, fulfilments by id) belongs to, sorted."""
    orgs = {str(order["org"])}
    for fulfilment_id in order["fulfilments"]:
        record = read(keys.fulfilment_key(fulfilment_id))
        if record is not None:
            orgs.add(str(record["org"]))
    return sorted(orgs)


def compute_invoice_orgs(read: Read, document: dict[str, Any]) -> list[str]:
    orgs = {str(document["issuer"])}
    order = read(keys.order_key(document["order_id"]))
    if order is not None:
        orgs.update(compute_order_orgs(read, order))
    return sorted(orgs)


def compute_fulfilment_orgs(read: Read, fulfilment: dict[str, Any]) -> list[str]:
    """A fulfilment belongs to its location's organisation and to its order's."""
    order = read(keys.order_key(fulfilment["order_id"]))
    return sorted({str(fulfilment["org"]), *(compute_order_orgs(read, order) if order else [])})


def compute_transfer_orgs(read: Read, transfer: dict[str, Any]) -> list[str]:
    """A transfer belongs to the organisations of the locations it leaves and goes to."""
    return sorted(
        {org for org in (get_location_org(read, transfer["from"]), get_location_org(read, transfer["to"])) if org}
    )


def get_order_orgs(read: Read, order_id: str) -> list[str] | None:
    """The organisations of order `order_id` (None if there is no such order)."""
    order = read(keys.order_key(order_id))
    return None if order is None else compute_order_orgs(read, order)


def get_fulfilment_orgs(read: Read, fulfilment_id: str) -> list[str] | None:
    fulfilment = read(keys.fulfilment_key(fulfilment_id))
    return None if fulfilment is None else compute_fulfilment_orgs(read, fulfilment)


def get_return_orgs(read: Read, return_id: str) -> list[str] | None:
    record = read(keys.return_key(return_id))
    return None if record is None else get_order_orgs(read, record["order_id"])


def get_transfer_orgs(read: Read, transfer_id: str) -> list[str] | None:
    transfer = read(keys.transfer_key(transfer_id))
    return None if transfer is None else compute_transfer_orgs(read, transfer)
