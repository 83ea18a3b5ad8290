"""Which organisations a ledger record belongs to, for reads that are private by organisation.

An order belongs to the organisation of the channel that placed it and to the
organisation of every location serving it (its fulfilments); a fulfilment, a
stock record or a journal entry to the organisation owning its location; an
invoice or credit note to its issuer and to everyone its order belongs to.
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
