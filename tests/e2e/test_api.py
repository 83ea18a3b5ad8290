"""The integrator's API of one real node process: tokens, scopes, organisations, lists, the change feed, writes.

One node serves the whole module. Its genesis has a second organisation
(`org-1`) with a store identity (`store-2`) and a location of its own
(`OPO-1`), so that reads private by organisation can be seen from both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.keys import PrivateKey
from tests.e2e.conftest import SingleNode, omsnode

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

RATE = 100
"""Requests per second per token on this node (burst: `RATE` too)."""


def add_organisation(home: Path) -> None:
    """Give the (not yet started) node's genesis an organisation `org-1` with a store identity `store-2`."""
    wire = json.loads((home / "genesis.json").read_text())
    wire["organisations"].append({"id": "org-1", "name": "Porto"})
    key = PrivateKey.generate()
    key.save(home / "clients" / "store-2.key")
    wire["clients"].append({"id": "store-2", "org": "org-1", "public_key": key.public.hex(), "roles": ["store"]})
    (home / "genesis.json").write_text(json.dumps(wire, indent=2))
    config = (home / "config.toml").read_text()
    config = config.replace("api_rate_per_s = 200", f"api_rate_per_s = {RATE}")
    (home / "config.toml").write_text(config.replace("api_burst = 400", f"api_burst = {RATE}"))


class Api:
    """The module's node with the tokens the tests use."""

    def __init__(self, node: SingleNode) -> None:
        self.node = node
        self.operator = node.token
        self.channel = node.make_token("channel-1", "orders:read,orders:write,invoices:read,events:read")
        self.store = node.make_token("store-1", "orders:read,inventory:read,invoices:read,events:read")
        self.porto = node.make_token("store-2", "orders:read,inventory:read,invoices:read,events:read")
        self.http = httpx.Client(base_url=node.url, timeout=40)

    def get(self, path: str, token: str | None, **params: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, params=params, headers=headers)

    def ok(self, path: str, token: str, **params: Any) -> Any:
        response = self.get(path, token, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def send(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        done = self.node.send(signer, kind, payload)
        assert done["status"] == "committed", done
        result: dict[str, Any] = done["receipt"]["result"]
        return result


def order_payload(ref: str, qty: int = 1, region: str = "PT", terms: str = "on_account") -> dict[str, Any]:
    return {
        "external_ref": ref,
        "currency": "EUR",
        "customer_hash": hashlib.sha256(ref.encode()).hexdigest(),
        "payment_terms": terms,
        "lines": [{"sku": "TEE-M", "qty": qty}],
        "delivery": {"region": region, "lat": 41_150_000 if region == "PO" else 38_700_000, "lon": -8_600_000},
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    node = SingleNode(tmp_path_factory.mktemp("api") / "home")
    add_organisation(node.home)
    node.start()
    api = Api(node)
    api.send("operator-1", "sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"})
    for location, org, lat in (("LIS-1", "org-0", 38_722_000), ("OPO-1", "org-1", 41_150_000)):
        place = {"location": location, "type": "store", "org": org, "region": "PT", "lat": lat, "lon": -8_600_000}
        api.send("operator-1", "location.upsert", place)
        api.send("operator-1", "stock.receive", {"location": location, "lines": [{"sku": "TEE-M", "qty": 50}]})
    yield api
    api.http.close()
    node.stop()
    node.client.close()


def test_business_routes_need_a_known_token(api: Api) -> None:
    order_id = api.send("channel-1", "order.create", order_payload("auth-1"))["order_id"]
    for path in (f"/v1/orders/{order_id}", "/v1/inventory", "/v1/journal", "/v1/invoices", "/v1/blocks/1"):
        missing = api.get(path, None)
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized", path
        assert missing.headers["www-authenticate"] == "Bearer"
        assert api.get(path, "oms_00000000_guess").status_code == 401
        assert api.get(path, api.operator).status_code == 200, path
    for path in ("/health", "/v1/status", "/v1/peers", "/metrics", "/openapi.json", "/docs"):
        assert api.get(path, None).status_code == 200, path


def test_a_token_lacking_the_scope_or_the_role_is_403(api: Api) -> None:
    for path in ("/v1/inventory", "/v1/journal", "/v1/blocks/1"):
        refused = api.get(path, api.channel)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", path
    auditor = api.node.make_token("auditor-1", "chain:read")
    assert api.get("/v1/blocks/1", auditor).status_code == 200
    store_chain = api.node.make_token("store-1", "chain:read")
    assert api.get("/v1/blocks/1", store_chain).status_code == 403


def test_tokens_created_and_revoked_count_at_once_on_a_running_node(api: Api) -> None:
    token = api.node.make_token("auditor-1", "inventory:read")
    assert api.get("/v1/inventory", token).status_code == 200
    listed = json.loads(omsnode("token", "list", "--home", str(api.node.home), "--json").stdout)
    (entry,) = [row for row in listed if token.split("_")[1] == row["id"]]
    assert entry["identity"] == "auditor-1" and "hash" not in entry
    assert token not in (api.node.home / "api_tokens.json").read_text()
    omsnode("token", "revoke", "--home", str(api.node.home), "--id", entry["id"])
    assert api.get("/v1/inventory", token).status_code == 401


def test_token_create_refuses_unknown_identities_and_scopes(api: Api) -> None:
    home = str(api.node.home)
    for identity, scopes in (("node-0", "orders:read"), ("mallory", "orders:read"), ("store-1", "orders:delete")):
        result = omsnode("token", "create", "--home", home, "--identity", identity, "--scopes", scopes, check=False)
        assert result.returncode == 1 and result.stdout == "" and "error" in result.stderr


def test_reads_are_private_by_organisation(api: Api) -> None:
    lisbon = api.send("channel-1", "order.create", order_payload("org-lis"))
    fulfilment = lisbon["fulfilments"][0]
    assert fulfilment.startswith(lisbon["order_id"])
    order = api.ok(f"/v1/orders/{lisbon['order_id']}", api.operator)
    assert {f["location"] for f in order["fulfilments"]} == {"LIS-1"}
    assert api.ok(f"/v1/orders/{lisbon['order_id']}", api.store)["order_id"] == lisbon["order_id"]
    hidden = api.get(f"/v1/orders/{lisbon['order_id']}", api.porto)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    porto_rows = api.ok("/v1/inventory", api.porto)["items"]
    assert {row["location"] for row in porto_rows} == {"OPO-1"}
    assert {row["location"] for row in api.ok("/v1/journal", api.porto)["items"]} == {"OPO-1"}
    assert {row["location"] for row in api.ok("/v1/inventory", api.operator)["items"]} >= {"LIS-1", "OPO-1"}


def test_a_token_over_its_rate_gets_429_with_retry_after(api: Api) -> None:
    token = api.node.make_token("auditor-1", "inventory:read")
    answers = [api.get("/v1/status", token) for _ in range(3)]
    assert all(a.status_code == 200 for a in answers)
    codes = [api.get("/v1/inventory", token, location="none").status_code for _ in range(RATE * 3)]
    assert 429 in codes
    limited = api.get("/v1/inventory", token, location="none")
    if limited.status_code == 429:
        assert int(limited.headers["retry-after"]) >= 1 and limited.json()["error"] == "rate_limited"
