"""The whole roles matrix on a real node in this process: every route without a token or its scope, every tx kind
signed by every role the table does not list (as a signed tx and through the API), every reach an operator lacks
over another organisation, and every way one organisation could read another's orders, customers or prices."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.roles import TX_ROLES
from ledger.genesis import Genesis, Identity
from ledger.keys import PrivateKey
from ledger.tx import make_tx
from node.api.access import ROUTES
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE, KEY_FILE
from node.home import create_network
from node.tokens import SCOPES
from omsclient import Keyring
from tests.helpers.api import bearer, make_token

OTHER_ORG = {"channel-2": "channel", "store-2": "store", "operator-2": "operator", "psp-2": "payment_provider"}
"""The second organisation's identities (`org-1`), beside the first's (`channel-1`, `store-1`, `operator-1`,
`auditor-1`, `psp-1` of `org-0`)."""

ONE_ROLE = {
    "channel": "channel-1",
    "store": "store-1",
    "operator": "operator-1",
    "auditor": "auditor-1",
    "payment_provider": "psp-1",
    "node": "till-1",
    "validator": "node-0",
}
"""An identity holding exactly each role."""


@dataclasses.dataclass
class Net:
    home: Path
    http: TestClient
    keyring: Keyring
    genesis: Genesis
    tokens: dict[str, dict[str, str]]
    """Headers of a token with every scope, by identity."""
    ids: dict[str, str]
    """Ids of the records the tests act on: `order-0` (placed by channel-1, served at WH0 of org-0), `order-1`
    (channel-2, WH1 of org-1), `fulfilment-0`."""

    def send(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign, submit and wait for one tx; its receipt."""
        window = {"chain_id": self.genesis.chain_id, "valid_until": self.http.get("/v1/status").json()["height"] + 50}
        tx = self.keyring.signer(signer).sign_tx(kind, payload, **window)
        answer = self.http.post("/v1/tx", json={**tx.to_wire(), "signature": tx.signature.hex()})
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 30
        while True:
            status = self.http.get(f"/v1/tx/{tx.id.hex()}", headers=self.tokens["operator-1"]).json()
            if status.get("status") in ("committed", "rejected"):
                return dict(status["receipt"])
            assert time.monotonic() < deadline, status
            time.sleep(0.01)


def order_payload(ref: str, sku: str) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "currency": "EUR",
        "customer_hash": hashlib.sha256(f"customer of {ref}".encode()).hexdigest(),
        "payment_terms": "on_account",
        "lines": [{"sku": sku, "qty": 1}],
        "delivery": {"region": "PT", "lat": 38_700_000, "lon": -9_100_000},
    }


def place(location: str, org: str) -> dict[str, Any]:
    return {"location": location, "type": "warehouse", "org": org, "region": "PT", "lat": 38_700_000, "lon": 1}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    home = tmp_path_factory.mktemp("matrix") / "node-0"
    genesis = create_network([home], [0], home / CLIENTS_DIR)
    added = []
    for ident, role in [*OTHER_ORG.items(), ("till-1", "node")]:
        key = PrivateKey.generate()
        key.save(home / CLIENTS_DIR / f"{ident}.key")
        added.append(Identity(ident, "org-0" if ident == "till-1" else "org-1", key.public, frozenset({role})))
    genesis = dataclasses.replace(
        genesis,
        organisations=(*genesis.organisations, {"id": "org-1", "name": "Franchisee"}),
        clients=(*genesis.clients, *added),
    )
    genesis.save(home / GENESIS_FILE)
    PrivateKey.load(home / KEY_FILE).save(home / CLIENTS_DIR / "node-0.key")
    with TestClient(create_app(home), raise_server_exceptions=False) as http:
        keyring = Keyring(home / CLIENTS_DIR, genesis.chain_id, lambda: 0)
        identities = [c.id for c in genesis.clients if c.id != "till-1"]
        tokens = {ident: bearer(make_token(home, ident, SCOPES)) for ident in identities}
        network = Net(home, http, keyring, genesis, tokens, {})
        setup(network)
        yield network


def setup(net: Net) -> None:
    for sku in ("TEE", "MUG"):
        net.send("operator-1", "sku.upsert", {"sku": sku, "price": 1999, "currency": "EUR", "tax_class": "standard"})
    for location, org, sku in (("WH0", "org-0", "TEE"), ("WH1", "org-1", "MUG")):
        assert net.send("operator-1", "location.upsert", place(location, org))["ok"]
        assert net.send("operator-1", "stock.receive", {"location": location, "lines": [{"sku": sku, "qty": 50}]})["ok"]
    for n, (channel, sku) in enumerate((("channel-1", "TEE"), ("channel-2", "MUG"))):
        receipt = net.send(channel, "order.create", order_payload(f"matrix-{n}", sku))
        assert receipt["ok"], receipt
        net.ids[f"order-{n}"] = receipt["result"]["order_id"]
    order = net.http.get(f"/v1/orders/{net.ids['order-0']}", headers=net.tokens["operator-1"]).json()
    net.ids["fulfilment-0"] = order["fulfilments"][0]["fulfilment_id"]
    assert order["fulfilments"][0]["location"] == "WH0"


PLACEHOLDERS = {"height": "1", "seq": "1", "proposal_id": "0" * 64}
"""Ids of the right shape for path parameters with a pattern."""


def fill(path: str, ids: dict[str, str] | None = None) -> str:
    """A concrete path: `{order_id}` from `ids` where given, `none` (no such record) otherwise."""
    return re.sub(r"{(\w+)}", lambda m: (ids or {}).get(m.group(1), PLACEHOLDERS.get(m.group(1), "none")), path)


BODIES: dict[str, dict[str, Any]] = {
    "order.create": order_payload("matrix-new", "TEE"),
    "order.import": {"orders": [order_payload("matrix-import", "TEE")]},
    "payment.authorize": {"amount": 100, "reference": "auth-1"},
    "payment.capture": {"amount": 100, "reference": "pay-1"},
    "payment.refund": {"amount": 100, "reference": "refund-1"},
    "return.request": {"order_id": "none", "lines": [{"sku": "TEE", "qty": 1}]},
    "return.receive": {"location": "WH0"},
    "fulfilment.ship": {"carrier": "CTT"},
    "stock.receive": {"location": "WH0", "lines": [{"sku": "TEE", "qty": 1}]},
    "stock.adjust": {"location": "WH0", "sku": "TEE", "delta": -1, "reason": "damaged"},
    "stock.transfer": {"from": "WH0", "to": "WH1", "lines": [{"sku": "TEE", "qty": 1}]},
    "stock.count": {"location": "WH0", "counts": [{"sku": "TEE", "qty": 1}]},
    "stock.count.approve": {"location": "WH0", "reason": "found"},
    "stock.safety": {"location": "WH0", "sku": "TEE", "qty": 1},
    "governance.propose": {"action": "org.add", "params": {"org": "org-9", "name": "Nine"}},
}
"""A body of the right shape for each write route whose body has required fields."""


def body_of(path: str, kind: str) -> Any:
    if path == "/v1/orders/import":
        return BODIES["order.import"]["orders"]
    body = dict(BODIES.get(kind, {}))
    for name in re.findall(r"{(\w+)}", path):
        body.pop(name, None)
    return body


# -- routes and scopes -----------------------------------------------------------------------------------------


def test_every_token_route_refuses_no_token_and_a_token_without_its_scope(net: Net):
    scoped = [key for key, access in ROUTES.items() if access.scope is not None]
    tried = 0
    for (method, path), access in ROUTES.items():
        if access.who != "token":
            continue
        url = fill(path)
        assert net.http.request(method, url, json={}).status_code == 401, (method, path)
        if access.scope is None:
            continue
        lacking = bearer(make_token(net.home, "operator-1", SCOPES - {access.scope}))
        answer = net.http.request(method, url, json={}, headers=lacking)
        assert answer.status_code == 403 and access.scope in answer.json()["message"], (method, path, answer.text)
        tried += 1
    assert tried == len(scoped) > 70


def test_routes_for_nodes_refuse_a_token(net: Net):
    for (method, path), access in ROUTES.items():
        if access.who in ("member node", "node key") and path != "/p2p":
            body = {"time_ms": int(time.time() * 1000), "signature": "00" * 64}
            answer = net.http.request(method, fill(path), json=body, headers=net.tokens["operator-1"])
            assert answer.status_code in (401, 403), (method, path, answer.text)


# -- tx kinds and roles ----------------------------------------------------------------------------------------


def test_every_tx_kind_signed_by_a_role_the_table_does_not_list_is_refused_on_admission(net: Net):
    refused = 0
    for kind, grants in TX_ROLES.items():
        for role, ident in ONE_ROLE.items():
            if role in grants:
                continue
            key = PrivateKey.load(net.home / CLIENTS_DIR / f"{ident}.key")
            tx = make_tx(net.genesis.chain_id, kind, ident, refused + 1, {}, key, valid_until=10_000)
            answer = net.http.post("/v1/tx", json={**tx.to_wire(), "signature": tx.signature.hex()})
            assert answer.status_code == 400 and "may not send" in answer.json()["message"], (kind, role, answer.text)
            refused += 1
    assert refused == sum(len(ONE_ROLE) - len(grants) for grants in TX_ROLES.values())


def test_every_write_route_refuses_a_token_whose_identity_the_table_does_not_list(net: Net):
    for (method, path), access in ROUTES.items():
        if access.kind is None:
            continue
        for role, ident in ONE_ROLE.items():
            if role in TX_ROLES[access.kind] or ident not in net.tokens:
                continue
            answer = net.http.request(method, fill(path), json=body_of(path, access.kind), headers=net.tokens[ident])
            assert answer.status_code == 403, (path, role, answer.text)
            assert answer.json()["message"].startswith(f"{ident} (roles"), answer.text


# -- reach: an operator over another organisation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("order.cancel", {"order_id": "order-0"}),
        ("order.edit", {"order_id": "order-0"}),
        ("payment.capture", {"order_id": "order-0", "amount": 1, "reference": "p-x"}),
        ("payment.refund", {"order_id": "order-0", "amount": 1, "reference": "r-x"}),
        ("stock.adjust", BODIES["stock.adjust"]),
        ("stock.transfer", BODIES["stock.transfer"]),
        ("stock.safety", BODIES["stock.safety"]),
    ],
)
def test_an_operator_of_another_organisation_is_refused_what_the_table_does_not_grant(
    net: Net, kind: str, payload: dict[str, Any]
):
    payload = {name: net.ids.get(value, value) if isinstance(value, str) else value for name, value in payload.items()}
    receipt = net.send("operator-2", kind, payload)
    assert (receipt["ok"], receipt["code"]) == (False, "forbidden"), receipt
    assert "org-0" not in receipt["message"] and "channel-1" not in receipt["message"]


def test_through_the_api_an_operator_of_another_organisation_may_not_cancel_or_pay_but_its_own_may(net: Net):
    order = net.ids["order-0"]
    for verb, body in (("cancel", {}), ("pay", BODIES["payment.capture"])):
        answer = net.http.post(f"/v1/orders/{order}/{verb}", json=body, headers=net.tokens["operator-2"])
        assert answer.status_code == 403 and "its own only" in answer.json()["message"], answer.text
    own = net.http.post(
        f"/v1/orders/{order}/pay?wait=commit", json=BODIES["payment.capture"], headers=net.tokens["operator-1"]
    )
    assert own.status_code == 200 and own.json()["status"] == "committed", own.text


def test_an_operator_still_receives_stock_anywhere_as_the_table_grants(net: Net):
    receipt = net.send("operator-2", "stock.receive", {"location": "WH0", "lines": [{"sku": "TEE", "qty": 1}]})
    assert receipt["ok"], receipt


# -- reads: one organisation of another's orders, customers and prices ------------------------------------------


def test_an_organisation_reads_nothing_of_anothers_orders_by_any_list_filter_feed_or_error(net: Net):
    order, theirs = net.ids["order-0"], net.ids["order-1"]
    customer = order_payload("matrix-0", "TEE")["customer_hash"]
    secret = (order, customer, "matrix-0")
    for ident in ("store-2", "channel-2", "psp-2"):  # an operator or an auditor reads every organisation's
        headers = net.tokens[ident]
        reads = [
            ("/v1/orders", {}),
            ("/v1/orders", {"channel": "channel-1"}),
            ("/v1/orders", {"status": "released"}),
            ("/v1/orders", {"sku": "TEE"}),
            ("/v1/orders", {"location": "WH0"}),
            ("/v1/returns", {"order_id": order}),
            ("/v1/invoices", {"order_id": order}),
            ("/v1/events", {"after": "0"}),
            ("/v1/inventory", {"location": "WH0"}),
            ("/v1/journal", {"location": "WH0"}),
            ("/v1/analytics/sales", {"by": "channel"}),
            ("/metrics", {}),
        ]
        for path, params in reads:
            answer = net.http.get(path, params=params, headers=headers)
            assert answer.status_code in (200, 422), (ident, path, answer.text)
            assert not any(value in answer.text for value in secret), (ident, path, params)
        for path in (f"/v1/orders/{order}", f"/v1/orders/{order}/history", f"/v1/proofs/order/{order}"):
            answer = net.http.get(path, headers=headers)
            assert answer.status_code == 404, (ident, path, answer.text)
            assert customer not in answer.text and "channel-1" not in answer.text and "org-0" not in answer.text
        cancel = net.http.post(f"/v1/orders/{order}/cancel", json={}, headers=headers)
        assert cancel.status_code in (403, 404) and customer not in cancel.text and "org-0" not in cancel.text
        assert theirs in net.http.get("/v1/orders", headers=headers).text, f"{ident} reads its own"


def test_settings_that_name_customers_are_read_and_proposed_only_with_the_customers_scopes(net: Net):
    blocked = [hashlib.sha256(b"blocked customer").hexdigest()]
    assert net.send("operator-1", "config.set", {"key": "review.blocked_customers", "value": blocked})["ok"]
    plain = bearer(make_token(net.home, "operator-1", SCOPES - {"customers:read", "customers:write"}))
    config = net.http.get("/v1/config", headers=plain).json()
    assert "review.blocked_customers" not in config["effective"] and blocked[0] not in str(config)
    full = net.http.get("/v1/config", headers=net.tokens["operator-1"]).json()
    assert full["effective"]["review.blocked_customers"] == blocked
    proposal = {"action": "config.set", "params": {"key": "review.blocked_customers", "value": []}}
    refused = net.http.post("/v1/governance/proposals", json=proposal, headers=plain)
    assert refused.status_code == 403 and "customers:write" in refused.json()["message"], refused.text
