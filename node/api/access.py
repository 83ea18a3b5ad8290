"""Who may call what: the one table of every API route, beside the tx kinds' table (`contracts.roles`).

Each route of the node's server is one row of `ROUTES`, keyed by method and
path, saying who is let in:

- `anyone`: no credentials (liveness, status, the page, the API's own docs,
  and `/metrics`, which a node may keep to its own machine);
- `token`: an API token (`Authorization: Bearer`), holding the row's `scope`
  (any token when the scope is None); `authorize_route` is the one gate of
  every such route, and reads the scope here. What the token then sees is
  its organisation's data, or every organisation's for the roles in
  `GLOBAL_READERS` (operators, auditors); a route that sends a tx (`kind`)
  signs it for the token's identity, which the roles table must allow, with
  the reach it gives (`contracts.roles`);
- `signed`: txs signed by member identities, checked on admission as any
  tx is (the route itself needs no token);
- `node key`: a request signed with the node's own key (a backup);
- `member node`: a sealed read, or sealed envelopes, from a node of the
  membership (`p2p.reads`, `p2p.envelope`).

`render_markdown()` writes both tables as `docs/roles.md` (run this module
to print it); a test keeps the file, this table and the app's routes equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from fastapi.routing import APIRoute

from contracts.roles import TX_ROLES, reaches_every_org
from node.tokens import GLOBAL_READERS, SCOPES, Principal

Who = Literal["anyone", "token", "signed", "node key", "member node"]
"""What a request must carry to be let in."""


@dataclass(frozen=True)
class RouteAccess:
    """Who may call one route."""

    who: Who
    scope: str | None = None
    """The scope a token needs (`who` is `token`); None: any token."""
    kind: str | None = None
    """The tx kind the route signs for the token, whose roles and reach `contracts.roles` gives."""


ANYONE = RouteAccess("anyone")
SIGNED = RouteAccess("signed")
MEMBER_NODE = RouteAccess("member node")


def token(scope: str | None, kind: str | None = None) -> RouteAccess:
    return RouteAccess("token", scope, kind)


ROUTES: dict[tuple[str, str], RouteAccess] = {
    # node, the page and the API's own description
    ("GET", "/health"): ANYONE,
    ("GET", "/docs"): ANYONE,
    ("GET", "/docs/oauth2-redirect"): ANYONE,
    ("GET", "/redoc"): ANYONE,
    ("GET", "/openapi.json"): ANYONE,
    ("GET", "/v1/status"): ANYONE,
    ("GET", "/v1/peers"): ANYONE,
    ("GET", "/metrics"): ANYONE,
    ("GET", "/"): ANYONE,
    ("GET", "/web/{name}"): ANYONE,
    ("POST", "/v1/admin/backup"): RouteAccess("node key"),
    # txs and blocks
    ("POST", "/v1/tx"): SIGNED,
    ("POST", "/v1/txs"): SIGNED,
    ("GET", "/v1/tx/{tx_id}"): token(None),
    ("GET", "/v1/activity"): token(None),
    ("GET", "/v1/blocks/{height}"): token("chain:read"),
    ("GET", "/v1/proofs/tx/{tx_id}"): token(None),
    # orders
    ("GET", "/v1/orders"): token("orders:read"),
    ("GET", "/v1/orders/{order_id}"): token("orders:read"),
    ("GET", "/v1/orders/{order_id}/history"): token("orders:read"),
    ("GET", "/v1/orders/{order_id}/personal"): token("personal:read"),
    ("GET", "/v1/orders/{order_id}/messages/{event}"): token("orders:read"),
    ("GET", "/v1/proofs/order/{order_id}"): token("orders:read"),
    ("GET", "/v1/proofs/state/order/{order_id}"): token("orders:read"),
    ("POST", "/v1/orders"): token("orders:write", "order.create"),
    ("POST", "/v1/orders/import"): token("orders:write", "order.import"),
    ("POST", "/v1/orders/{order_id}/cancel"): token("orders:write", "order.cancel"),
    ("POST", "/v1/orders/{order_id}/edit"): token("orders:write", "order.edit"),
    ("POST", "/v1/orders/{order_id}/approve"): token("orders:write", "order.approve"),
    ("POST", "/v1/orders/{order_id}/reject"): token("orders:write", "order.reject"),
    ("POST", "/v1/orders/{order_id}/intercept"): token("orders:write", "order.intercept"),
    ("POST", "/v1/orders/{order_id}/release"): token("orders:write", "order.release"),
    ("POST", "/v1/orders/{order_id}/allocate"): token("orders:write", "order.allocate"),
    ("POST", "/v1/orders/{order_id}/complete"): token("orders:write", "order.complete"),
    ("POST", "/v1/orders/{order_id}/authorize-payment"): token("orders:write", "payment.authorize"),
    ("POST", "/v1/orders/{order_id}/pay"): token("orders:write", "payment.capture"),
    ("POST", "/v1/orders/{order_id}/refund"): token("orders:write", "payment.refund"),
    ("POST", "/v1/orders/{order_id}/request-return"): token("orders:write", "return.request"),
    ("POST", "/v1/fulfilments/{fulfilment_id}/pick"): token("orders:write", "fulfilment.pick"),
    ("POST", "/v1/fulfilments/{fulfilment_id}/ship"): token("orders:write", "fulfilment.ship"),
    ("POST", "/v1/fulfilments/{fulfilment_id}/deliver"): token("orders:write", "fulfilment.deliver"),
    ("POST", "/v1/fulfilments/{fulfilment_id}/decline"): token("orders:write", "fulfilment.decline"),
    ("GET", "/v1/returns"): token("orders:read"),
    ("GET", "/v1/returns/{return_id}"): token("orders:read"),
    ("POST", "/v1/returns"): token("orders:write", "return.request"),
    ("POST", "/v1/returns/{return_id}/receive"): token("orders:write", "return.receive"),
    ("POST", "/v1/returns/{return_id}/cancel"): token("orders:write", "return.cancel"),
    ("GET", "/v1/analytics/sales"): token("orders:read"),
    ("GET", "/v1/analytics/times"): token("orders:read"),
    ("GET", "/v1/analytics/outcomes"): token("orders:read"),
    ("GET", "/v1/analytics/allocation"): token("orders:read"),
    # stock
    ("GET", "/v1/inventory"): token("inventory:read"),
    ("GET", "/v1/inventory/{location}/{sku}"): token("inventory:read"),
    ("GET", "/v1/journal"): token("inventory:read"),
    ("GET", "/v1/lots/{lot}"): token("inventory:read"),
    ("GET", "/v1/trace/{lot}"): token("inventory:read"),
    ("GET", "/v1/transfers/{transfer_id}"): token("inventory:read"),
    ("GET", "/v1/proofs/movement/{location}/{sku}/{seq}"): token("inventory:read"),
    ("GET", "/v1/proofs/state/stock/{location}/{sku}"): token("inventory:read"),
    ("GET", "/v1/analytics/stock"): token("inventory:read"),
    ("POST", "/v1/reconciliations/stock"): token("inventory:read"),
    ("POST", "/v1/inventory/receipts"): token("inventory:write", "stock.receive"),
    ("POST", "/v1/inventory/adjustments"): token("inventory:write", "stock.adjust"),
    ("POST", "/v1/inventory/transfers"): token("inventory:write", "stock.transfer"),
    ("POST", "/v1/inventory/transfers/{transfer_id}/accept"): token("inventory:write", "stock.transfer.accept"),
    ("POST", "/v1/inventory/transfers/{transfer_id}/refuse"): token("inventory:write", "stock.transfer.refuse"),
    ("POST", "/v1/inventory/transfers/{transfer_id}/recall"): token("inventory:write", "stock.transfer.recall"),
    ("POST", "/v1/inventory/counts"): token("inventory:write", "stock.count"),
    ("POST", "/v1/inventory/counts/{count}/approve"): token("inventory:write", "stock.count.approve"),
    ("POST", "/v1/inventory/safety-stock"): token("inventory:write", "stock.safety"),
    # invoices
    ("GET", "/v1/invoices"): token("invoices:read"),
    ("GET", "/v1/invoices/{number}"): token("invoices:read"),
    ("GET", "/v1/invoices/{number}/document"): token("invoices:read"),
    ("GET", "/v1/credit-notes"): token("invoices:read"),
    ("GET", "/v1/credit-notes/{number}"): token("invoices:read"),
    ("GET", "/v1/proofs/invoice/{number}"): token("invoices:read"),
    ("GET", "/v1/reconciliations/finance"): token("invoices:read"),
    # catalogue, configuration, governance
    ("GET", "/v1/skus"): token("catalogue:read"),
    ("GET", "/v1/skus/{sku}"): token("catalogue:read"),
    ("GET", "/v1/locations"): token("catalogue:read"),
    ("GET", "/v1/locations/{location}"): token("catalogue:read"),
    ("GET", "/v1/config"): token("config:read"),
    ("GET", "/v1/governance/proposals"): token("config:read"),
    ("GET", "/v1/governance/proposals/{proposal_id}"): token("config:read"),
    ("GET", "/v1/governance/members"): token("config:read"),
    ("POST", "/v1/governance/proposals"): token("governance:write", "governance.propose"),
    ("POST", "/v1/governance/proposals/{proposal_id}/approve"): token("governance:write", "governance.approve"),
    # the change feed and webhooks
    ("GET", "/v1/events"): token("events:read"),
    ("GET", "/v1/webhooks"): token("webhooks:read"),
    ("GET", "/v1/webhooks/deliveries"): token("webhooks:read"),
    ("POST", "/v1/webhooks"): token("webhooks:write"),
    ("POST", "/v1/webhooks/deliveries/{delivery_id}/replay"): token("webhooks:write"),
    ("DELETE", "/v1/webhooks/{subscription_id}"): token("webhooks:write"),
    # between nodes
    ("POST", "/p2p"): MEMBER_NODE,
    ("GET", "/p2p/status"): MEMBER_NODE,
    ("GET", "/p2p/blocks"): MEMBER_NODE,
    ("GET", "/p2p/snapshot"): MEMBER_NODE,
    ("GET", "/p2p/snapshot/{index}"): MEMBER_NODE,
    ("GET", "/p2p/addresses"): MEMBER_NODE,
}
"""(method, path) -> who may call it: every route of the node's server."""

CUSTOMERS_READ = "customers:read"
"""The scope that shows the settings that name customers (`Setting.names_customers`)."""

CUSTOMERS_WRITE = "customers:write"
"""The scope that proposes changes to the settings that name customers."""


def get_route_access(request: Request) -> RouteAccess:
    """The row of the route this request matched; a route missing from the table is a bug, and says so."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        raise RuntimeError(f"{request.url.path} matched no API route")
    key = (next(iter(sorted(route.methods or ()))), route.path)
    access = ROUTES.get(key)
    if access is None:
        raise RuntimeError(f"route {key[0]} {key[1]} is missing from node.api.access.ROUTES")
    return access


def may_act_on(principal: Principal, kind: str, owners: list[str]) -> bool:
    """May the token's identity send `kind` about something of `owners`: a role reaching every organisation for
    it, or one of the owners its own organisation (the contract checks a channel's own orders further)."""
    return reaches_every_org(principal.identity.roles, kind) or principal.org in owners


def describe_roles(kind: str) -> str:
    """`channel (own), operator (any)`: who may send `kind`, and how far."""
    return ", ".join(f"{role} ({reach})" for role, reach in TX_ROLES[kind].items())


def _rows(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render_markdown() -> str:
    """`docs/roles.md`: the tx kinds' table and the routes' table, as the code holds them."""
    routes_of: dict[str, list[str]] = {}
    for (method, path), access in ROUTES.items():
        if access.kind is not None:
            routes_of.setdefault(access.kind, []).append(f"`{method} {path}`")
    kinds = _rows(
        ("tx kind", "roles (reach)", "API routes (scope)"),
        (
            (
                f"`{kind}`",
                describe_roles(kind),
                ", ".join(routes_of.get(kind, [])) + (f" (`{_scope_of(kind)}`)" if kind in routes_of else "")
                or "signed txs only (`POST /v1/tx`)",
            )
            for kind in sorted(TX_ROLES)
        ),
    )
    routes = _rows(
        ("method", "path", "who", "scope", "tx kind"),
        (
            (
                method,
                f"`{path}`",
                access.who,
                f"`{access.scope}`" if access.scope else ("any token" if access.who == "token" else ""),
                f"`{access.kind}`" if access.kind else "",
            )
            for (method, path), access in sorted(ROUTES.items(), key=lambda item: (item[0][1], item[0][0]))
        ),
    )
    readers = ", ".join(sorted(GLOBAL_READERS))
    return "\n".join(
        [
            "# Roles and scopes",
            "",
            "Generated from `contracts/roles.py` and `node/api/access.py` by `python -m node.api.access`; a test",
            "keeps this file equal to the code. Do not edit it by hand.",
            "",
            "## Tx kinds",
            "",
            "Who may sign each tx kind, and how far each role reaches: `own` acts only on its own (a channel on",
            "the orders it placed, anyone else on its organisation's orders, locations, stock, payments and",
            "documents); `any` on every organisation's. A role not listed may not send the kind at all",
            "(`forbidden_role`); a role acting beyond its reach is refused `forbidden`. The `validator` role",
            "votes; `node` (an organisation's node that follows without voting) reads the chain from the",
            "validators (`/p2p`) and may send nothing; `auditor` sends nothing.",
            "",
            *kinds,
            "",
            "## API routes",
            "",
            "`who`: `anyone` needs no credentials; `token` an API token with the scope (any token when none);",
            "`signed` txs signed by member identities; `node key` a request signed with the node's own key;",
            "`member node` a sealed request from a node of the membership. A token reads its organisation's",
            f"data only; the roles {readers} read every organisation's. Settings that name customers (the",
            "blocked customers of the review gate) are shown only to tokens with `customers:read`, and",
            "proposed only with `customers:write`. Every scope a token may hold: "
            + ", ".join(f"`{scope}`" for scope in sorted(SCOPES))
            + ".",
            "",
            *routes,
            "",
        ]
    )


def _scope_of(kind: str) -> str:
    scopes = sorted({a.scope for a in ROUTES.values() if a.kind == kind and a.scope})
    return ", ".join(scopes)


if __name__ == "__main__":
    print(render_markdown(), end="")
