"""The roles tables cover exactly what exists: every route of the server, every tx kind the contracts handle, every
scope a token may hold; and `docs/roles.md` is what the code renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Route

from contracts import load_contracts
from contracts.roles import ANY, TX_ROLES, reaches_every_org
from ledger.genesis import ROLES
from node.api.access import ROUTES, render_markdown
from node.api.app import create_app
from node.tokens import SCOPES

DOC = Path(__file__).resolve().parents[3] / "docs" / "roles.md"


def list_routes(routes: list[Any]) -> set[tuple[str, str]]:
    """(method, path) of every route, through included routers."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, APIRoute | Route) and route.methods:
            found |= {(method, route.path) for method in route.methods if method != "HEAD"}
        elif hasattr(route, "original_router"):
            found |= list_routes(route.original_router.routes)
    return found


def test_every_route_of_the_server_is_in_the_table_and_nothing_else(tmp_path: Path):
    served = list_routes(create_app(tmp_path).routes) | {("POST", "/p2p")}  # the envelope inbox is a middleware
    assert served == set(ROUTES), f"missing: {served - set(ROUTES)}; not served: {set(ROUTES) - served}"


def test_every_tx_kind_the_contracts_handle_is_in_the_table_with_the_roles_they_check():
    contracts = load_contracts()
    assert set(contracts.rules) == set(TX_ROLES)
    for kind, grants in TX_ROLES.items():
        assert contracts.required_roles(kind) == frozenset(grants), kind
        assert set(grants) <= ROLES - {"node", "auditor"}, kind


def test_the_routes_name_known_scopes_and_kinds():
    for (method, path), access in ROUTES.items():
        assert access.scope is None or access.scope in SCOPES, (method, path)
        assert access.kind is None or access.kind in TX_ROLES, (method, path)
        any_token = path in {"/v1/tx/{tx_id}", "/v1/proofs/tx/{tx_id}", "/v1/activity"}
        assert (access.who == "token") == (access.scope is not None or any_token), (method, path)


def test_no_role_reaches_another_organisations_stock_payments_or_orders_unless_the_table_says_so():
    bounded = ["stock.adjust", "stock.transfer", "payment.capture", "payment.refund", "order.cancel", "order.edit"]
    for kind in bounded:
        assert ANY not in TX_ROLES[kind].values(), kind
        assert not reaches_every_org(frozenset({"operator", "auditor", "store", "channel"}), kind)
    assert reaches_every_org(frozenset({"operator"}), "stock.receive")


def test_the_document_is_what_the_code_renders():
    assert DOC.read_text() == render_markdown(), "regenerate it: python -m node.api.access > docs/roles.md"
