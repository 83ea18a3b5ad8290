"""Who may send what: the one table of every tx kind, the roles that may sign it, and how far each reaches.

`TX_ROLES[kind][role]` is the reach of `role` for `kind`:

- `own`: the signer acts only on what is its own: a channel on the orders it
  placed; any other role on its organisation's orders, locations, stock,
  payments and documents;
- `any`: the signer acts on every organisation's (and on what belongs to
  none: the catalogue, the configuration, governance).

A role that a kind does not list may not send it at all (`forbidden_role`,
refused at admission and again at execution); a role listed `own` that acts
on another organisation's is refused `forbidden`. So an operator's powers
over other organisations are exactly the `any` entries of the table: an
operator may not move another organisation's stock, capture or refund its
payments, or cancel, complete or edit its orders, since the table grants
none of that; it keeps the ledger-wide powers (catalogue, configuration,
governance, the review gate), may receive stock and fulfil at any location
(how one organisation runs the warehouses of others), and may refuse goods
in transit to a location closed meanwhile, which nobody else can.

Each contract module's `ROLES` is `roles_for(...)` of the kinds it handles
(the runtime checks the signer against it); rules ask `reaches_every_org`
before they check ownership. The node's API routes state their scopes in
`node.api.access`, beside this table, and both are rendered in
`docs/roles.md`.
"""

from __future__ import annotations

from typing import Literal

Reach = Literal["own", "any"]
"""How far a role reaches for one kind: its own (organisation's, or a channel's own orders), or everyone's."""

OWN: Reach = "own"
ANY: Reach = "any"

TX_ROLES: dict[str, dict[str, Reach]] = {
    # governance and configuration: ledger-wide
    "config.set": {"operator": ANY},
    "governance.propose": {"validator": ANY, "operator": ANY},
    "governance.approve": {"validator": ANY, "operator": ANY},
    # catalogue
    "sku.upsert": {"operator": ANY},
    "location.upsert": {"operator": ANY, "store": OWN},
    # stock
    "stock.receive": {"store": OWN, "operator": ANY},
    "stock.adjust": {"store": OWN, "operator": OWN},
    "stock.transfer": {"store": OWN, "operator": OWN},
    "stock.count": {"store": OWN, "operator": OWN},
    "stock.count.approve": {"operator": OWN},
    "stock.transfer.accept": {"store": OWN, "operator": OWN},
    "stock.transfer.refuse": {"store": OWN, "operator": ANY},  # goods bound for a location closed meanwhile
    "stock.transfer.recall": {"store": OWN, "operator": OWN},
    "stock.safety": {"store": OWN, "operator": OWN},
    # orders
    "order.create": {"channel": OWN},
    "order.import": {"channel": OWN},
    "order.cancel": {"channel": OWN, "operator": OWN},
    "order.complete": {"channel": OWN, "operator": OWN},
    "order.edit": {"channel": OWN, "operator": OWN},
    # review gate
    "order.approve": {"operator": ANY},
    "order.reject": {"operator": ANY},
    "order.intercept": {"channel": OWN, "operator": ANY},
    "order.release": {"operator": ANY},
    # allocation and fulfilment
    "order.allocate": {"channel": OWN, "operator": ANY},
    # personal data: only the organisation that took the order (its ship-to was sealed to it) grants or erases it
    "order.grant_personal": {"validator": OWN, "channel": OWN, "operator": OWN},
    "order.erase_personal": {"operator": OWN},
    "fulfilment.decline": {"store": OWN, "operator": ANY},
    "fulfilment.pick": {"store": OWN, "operator": ANY},
    "fulfilment.ship": {"store": OWN, "operator": ANY},
    "fulfilment.deliver": {"store": OWN, "operator": ANY, "channel": OWN},
    # payments
    "payment.authorize": {"channel": OWN, "operator": OWN, "payment_provider": OWN},
    "payment.capture": {"channel": OWN, "operator": OWN, "payment_provider": OWN},
    "payment.refund": {"channel": OWN, "operator": OWN, "payment_provider": OWN},
    # returns and invoices
    "return.request": {"channel": OWN, "operator": OWN},
    "return.receive": {"store": OWN, "operator": ANY},
    "return.cancel": {"channel": OWN, "operator": OWN},
    "invoice.reverse": {"store": OWN, "operator": OWN},
}
"""Tx kind -> role -> reach: every kind a contract handles, and nothing else."""


def roles_for(*kinds: str) -> dict[str, frozenset[str]]:
    """The `ROLES` of a contract module that handles `kinds`: the roles that may sign each, from the table."""
    return {kind: frozenset(TX_ROLES[kind]) for kind in kinds}


def reaches_every_org(roles: frozenset[str], kind: str) -> bool:
    """Does one of `roles` act on every organisation's resources for `kind` (an `any` entry of the table)?"""
    grants = TX_ROLES.get(kind, {})
    return any(grants.get(role) == ANY for role in sorted(roles))
