"""An integrator's view of one real node process: tokens of two organisations, reads, writes, the feed.

The node's genesis gets a second organisation (`org-1`) with a store identity
(`store-2`), so that reads private by organisation can be seen from both
sides; `start_api` starts it with a catalogue of one SKU and a store of each
organisation (`LIS-1` of `org-0`, `OPO-1` of `org-1`) holding 50 units each.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from ledger.keys import PrivateKey
from node.config import NodeConfig
from tests.e2e.conftest import SingleNode


def add_organisation(home: Path) -> None:
    """Give the (not yet started) node's genesis an organisation `org-1` with a store identity `store-2`."""
    wire = json.loads((home / "genesis.json").read_text())
    wire["organisations"].append({"id": "org-1", "name": "Porto"})
    key = PrivateKey.generate()
    key.save(home / "clients" / "store-2.key")
    wire["clients"].append({"id": "store-2", "org": "org-1", "public_key": key.public.hex(), "roles": ["store"]})
    (home / "genesis.json").write_text(json.dumps(wire, indent=2))


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


def start_api(home: Path, **settings: Any) -> Api:
    """Start a node at `home` (with `settings` in its config) with a second organisation, a catalogue and stock at
    a store of each."""
    node = SingleNode(home)
    add_organisation(node.home)
    if settings:
        NodeConfig.save(dataclasses.replace(NodeConfig.load(home), **settings), home)
    node.start()
    api = Api(node)
    api.send("operator-1", "sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"})
    for location, org, lat in (("LIS-1", "org-0", 38_722_000), ("OPO-1", "org-1", 41_150_000)):
        place = {"location": location, "type": "store", "org": org, "region": "PT", "lat": lat, "lon": -8_600_000}
        api.send("operator-1", "location.upsert", place)
        api.send("operator-1", "stock.receive", {"location": location, "lines": [{"sku": "TEE-M", "qty": 50}]})
    return api


def stop_api(api: Api) -> None:
    api.http.close()
    api.node.stop()
    api.node.client.close()


def follow(api: Api, token: str, after: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every event after `after` until the feed has nothing new; the events and the last cursor."""
    events: list[dict[str, Any]] = []
    while True:
        page = api.ok("/v1/events", token, after=after, **params)
        events.extend(page["items"])
        if page["next_cursor"] == after:
            return events, after
        after = page["next_cursor"]


def collect_pages(api: Api, token: str, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.ok(path, token, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def post(api: Api, path: str, token: str, body: Any, key: str | None = None, **params: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", **({"idempotency-key": key} if key else {})}
    return api.http.post(path, json=body, params=params, headers=headers)
