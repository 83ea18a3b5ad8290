"""Customer data on a 4-node devnet: never in clear on any node, read only by who may, unreadable after erasure.

One devnet walks through the demo, whose orders carry their customers'
ship-to (and one their notes), sealed by the signing client. An organisation
governance gives a client of its own (`org-1`, which runs node-1) fulfils one
more order from a depot of its own, and its node is granted that order's key
by node-0 (the channel's organisation) as soon as allocation names it. Then,
on the same devnet:

- the channel's organisation reads its orders' ship-to back in full, and
  org-1 the one it fulfils; org-1 reads none of the orders it does not
  fulfil (404), another organisation reads nothing, and a token without
  `personal:read` is refused (403);
- after erasure nobody reads the order (410 on every node);
- every block served by the API and every byte of every node's LevelDB files
  (and every key and value LevelDB holds, decompressed) hold no customer
  name, address line, phone, e-mail or note.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from devnet.demo import run_devnet_demo
from devnet.network import Devnet
from devnet.scenario import CUSTOMERS, NOTES, customer
from ledger.keys import PrivateKey
from node.config import DATA_DIR, KEY_FILE
from omsclient import Client, Keyring, NodeError
from omsclient.signing import get_sealing_keys
from tests.e2e.conftest import omsnode, omsnode_json
from tests.helpers.devnet import wait_for

pytestmark = [pytest.mark.e2e]

WAIT_S = 240.0
"""Generous: four node processes share a busy machine."""

DEPOT_SHIP_TO = {
    "name": "Femke Bakker-Oosterhuis",
    "address_lines": ["Biltstraat 203 bis"],
    "city": "Utrecht",
    "postcode": "3572 AR",
    "country": "NL",
    "phone": "+31 30 555 0203",
    "email": "femke.bakker@example.org",
}
"""The ship-to of the order org-1 fulfils (no region: it is optional)."""


API_NOTES = "Leave it with the porter, Mr Okonkwo"
"""The notes of the order placed through `POST /v1/orders`."""


def secrets() -> list[str]:
    """Every value that must never be found in clear: names, address lines, phones, e-mails, notes."""
    values = [NOTES, API_NOTES]
    for ship_to in [*CUSTOMERS.values(), DEPOT_SHIP_TO]:
        values += [ship_to["name"], *ship_to["address_lines"], ship_to["phone"], ship_to["email"]]
    return values


class Scene:
    """The devnet after the demo and the org-1 order, with the tokens the checks read with."""

    def __init__(self, devnet: Devnet, keys_dir: Path) -> None:
        self.devnet = devnet
        self.operator = devnet.client(0, timeout=30.0)
        """node-0, with the devnet's token (`operator-1` of org-0, every scope)."""
        keys_dir.mkdir()
        for index in (1, 2):
            shutil.copyfile(devnet.node(index).home / KEY_FILE, keys_dir / f"node-{index}.key")
        for name in ("operator-1", "channel-1"):
            shutil.copyfile(devnet.clients_dir / f"{name}.key", keys_dir / f"{name}.key")
        PrivateKey.generate().save(keys_dir / "depot-1.key")
        self.keyring = Keyring(
            keys_dir, devnet.genesis.chain_id, self.operator.valid_until, get_sealing_keys(devnet.genesis)
        )

    def send(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        done = self.operator.wait_tx(self.operator.submit(self.keyring.sign(signer, kind, payload)), timeout=WAIT_S)
        assert done["status"] == "committed", done
        result: dict[str, Any] = done["receipt"]["result"]
        return result

    def token(self, index: int, identity: str, scopes: str, *flags: str) -> str:
        home = str(self.devnet.node(index).home)
        return omsnode(
            "token", "create", "--home", home, "--identity", identity, "--scopes", scopes, *flags
        ).stdout.strip()

    def reader(self, index: int, token: str) -> Client:
        return Client(self.devnet.node(index).url, token, timeout=30.0)

    def add_depot_client(self) -> None:
        """`depot-1`, a store identity of org-1, added by governance (org-0 proposes, org-1 and org-2 approve)."""
        public = PrivateKey.load(self.keyring.keys_dir / "depot-1.key").public.hex()
        params = {"id": "depot-1", "org": "org-1", "public_key": public, "roles": ["store"]}
        args = ("governance", "propose", "client.add", "--payload", json.dumps(params))
        proposal = omsnode_json(*args, "--node", self.devnet.node(0).url, "--token", self.devnet.token)
        assert proposal["status"] == "committed", proposal
        for validator in ("node-1", "node-2"):
            result = self.send(validator, "governance.approve", {"proposal": proposal["resource"]["id"]})
        assert result["status"] == "executed", result

    def place_depot_order(self) -> str:
        """An order only org-1's depot can serve; its id."""
        sku = {"sku": "DEPOT-ONLY", "price": 1500, "currency": "EUR", "tax_class": "standard"}
        self.send("operator-1", "sku.upsert", sku)
        depot = {"location": "UTR-DEPOT", "type": "warehouse", "region": "NL", "org": "org-1"}
        self.send("operator-1", "location.upsert", {**depot, "lat": 52_090_000, "lon": 5_120_000, "priority": 10})
        lines = [{"sku": "DEPOT-ONLY", "qty": 2}]
        self.send("operator-1", "stock.receive", {"location": "UTR-DEPOT", "lines": lines, "document": "PO-D1"})
        payload = {
            "external_ref": "WEB-9001",
            "customer_hash": customer("femke"),
            "currency": "EUR",
            "payment_terms": "on_account",
            "delivery": {"region": "NL", "lat": 52_091_234, "lon": 5_121_987},
            "lines": [{"sku": "DEPOT-ONLY", "qty": 1}],
            "ship_to": DEPOT_SHIP_TO,
        }
        order_id: str = self.send("channel-1", "order.create", payload)["order_id"]
        self.send("operator-1", "order.approve", {"order_id": order_id, "note": "known account"})  # held: on account
        return order_id


def personal(client: Client, order_id: str) -> tuple[int, Any]:
    """(status, body) of `GET /v1/orders/{order_id}/personal`."""
    try:
        return 200, client.get(f"/v1/orders/{order_id}/personal")
    except NodeError as error:
        return error.status, error.code


@pytest.fixture(scope="module")
def scene(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    run_devnet_demo(devnet, say=lambda line: None)
    scene = Scene(devnet, tmp_path_factory.mktemp("keys") / "keys")
    scene.add_depot_client()
    yield scene
    scene.operator.close()


@pytest.fixture(scope="module")
def demo_orders(scene: Scene) -> dict[str, str]:
    """Order id -> customer (by the order's customer hash), of every demo order with personal data."""
    by_hash = {customer(name): name for name in CUSTOMERS}
    orders = [scene.operator.get(f"/v1/orders/{o['order_id']}") for o in scene.operator.pages("/v1/orders")]
    return {o["order_id"]: by_hash[o["customer_hash"]] for o in orders if o["customer_hash"] in by_hash}


def test_the_channel_org_reads_its_orders_and_an_org_that_fulfils_none_reads_nothing(
    scene: Scene, demo_orders: dict[str, str]
) -> None:
    assert len(set(demo_orders.values())) == len(CUSTOMERS), demo_orders
    org0 = scene.reader(0, scene.token(0, "operator-1", "orders:read,personal:read"))
    depot = scene.reader(1, scene.token(1, "depot-1", "orders:read,personal:read", "--added"))
    stranger = scene.reader(0, scene.token(0, "depot-1", "orders:read,personal:read", "--added"))
    unscoped = scene.reader(0, scene.token(0, "operator-1", "orders:read"))
    for order_id, name in demo_orders.items():
        status, body = personal(org0, order_id)
        assert status == 200 and body["ship_to"] == CUSTOMERS[name], (order_id, body)
        assert personal(depot, order_id) == (404, "not_found")
        assert personal(stranger, order_id) == (404, "not_found")
        assert personal(unscoped, order_id)[0] == 403
    assert NOTES in {personal(org0, order_id)[1]["notes"] for order_id in demo_orders}
    members = {o["id"]: o for o in scene.operator.get("/v1/governance/members")["organisations"]}
    for organisation in scene.devnet.genesis.organisations:
        assert members[organisation["id"]]["encryption_key"] == organisation["encryption_key"]


def test_the_fulfilling_org_is_granted_the_key_and_reads_then_nobody_after_erasure(scene: Scene) -> None:
    order_id = scene.place_depot_order()
    depot = scene.reader(1, scene.token(1, "depot-1", "orders:read,personal:read", "--added"))
    expected = {**DEPOT_SHIP_TO, "region": None}
    wait_for(lambda: personal(depot, order_id)[0] == 200, WAIT_S, "org-1 to be granted the order's key")
    assert personal(depot, order_id)[1]["ship_to"] == expected
    org0 = scene.reader(0, scene.token(0, "operator-1", "personal:read"))
    assert personal(org0, order_id)[1]["ship_to"] == expected
    org2 = scene.reader(2, scene.token(2, "operator-1", "personal:read"))
    assert personal(org2, order_id) == (404, "not_found")

    scene.send("operator-1", "order.erase_personal", {"order_id": order_id})
    for client in (org0, depot):
        wait_for(lambda c=client: personal(c, order_id)[0] != 200, WAIT_S, "the erasure to reach every node")
        assert personal(client, order_id) == (410, "personal_data_erased")


def test_an_order_placed_through_the_api_is_sealed_by_the_node_and_its_retry_is_the_same_tx(scene: Scene) -> None:
    writer = scene.reader(0, scene.token(0, "channel-1", "orders:read,orders:write,personal:read"))
    body = {
        "external_ref": "WEB-9002",
        "customer_hash": customer("hana"),
        "currency": "EUR",
        "lines": [{"sku": "GIFT-25", "qty": 1}],
        "ship_to": CUSTOMERS["hana"],
        "notes": API_NOTES,
    }
    first = writer.post("/v1/orders", body, idempotency_key="api-1", wait="commit")
    again = writer.post("/v1/orders", body, idempotency_key="api-1", wait="commit")
    assert first["status"] == "committed" and again["tx_id"] == first["tx_id"]
    status, opened = personal(writer, first["resource"]["order_id"])
    assert status == 200 and (opened["ship_to"], opened["notes"]) == (CUSTOMERS["hana"], API_NOTES)


def test_no_block_and_no_byte_of_any_node_holds_customer_data_in_clear(scene: Scene, devnet: Devnet) -> None:
    values = secrets()
    head = scene.operator.status()["height"]
    for height in range(1, head + 1):
        block = json.dumps(scene.operator.get(f"/v1/blocks/{height}"), ensure_ascii=False)
        found = [value for value in values if value in block]
        assert not found, (height, found)
    omsnode("devnet", "down", "--dir", str(devnet.root))
    needles = [value.encode() for value in values]
    for node in devnet.nodes:
        data = node.home / DATA_DIR
        files = [path for path in data.rglob("*") if path.is_file()]
        assert files, data
        for path in files:
            raw = path.read_bytes()
            assert not [n for n in needles if n in raw], path
        db = plyvel.DB(str(data))
        seen_in_clear = False  # the scan meets what is meant to be in clear (a reference): it reads order data
        try:
            for key, value in db.iterator():
                assert not [n for n in needles if n in key or n in value], key
                seen_in_clear = seen_in_clear or b"WEB-9001" in value
        finally:
            db.close()
        assert seen_in_clear, node.home
