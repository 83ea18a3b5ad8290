"""Catching up with real node processes: restart after a kill, a wiped data directory, and state sync.

A 4-node devnet with one tx per block and a short checkpoint interval keeps
committing while one node is down; the node must come back to the same head
hash and the same state commitment as the others, through the HTTP API only.
The killed node misses several batches of block sync. A node that joined by
state sync refuses a tx committed before its snapshot, which it never saw, as
a replay, lists the orders committed before it as a node that replayed every
block, and answers a feed cursor from before its snapshot with 410 and where
its feed starts. The nodes sync by sealed reads (`p2p.reads`): anyone else,
without a seal or with a key that is not a member node's, reads nothing under
`/p2p`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from devnet.network import Devnet
from ledger.genesis import ConsensusParams
from ledger.keys import PrivateKey
from omsclient import Client, Keyring, tx_id
from p2p.envelope import Sealer
from p2p.reads import ReadSealer
from p2p.sync import DEFAULT_BATCH_BLOCKS, decode_blocks, decode_status
from tests.e2e.integrator import order_payload
from tests.helpers.devnet import load, node_process, sealed_read, status, wait_converged, wipe

pytestmark = [pytest.mark.e2e]

CHECKPOINT_INTERVAL = 20
LOAD_SECONDS = 20.0
"""How long the wipe and state-sync tests keep the network committing while a node is down."""

MISSED_BLOCKS = 3 * DEFAULT_BATCH_BLOCKS
"""Blocks committed while the killed node is down: three batches of block sync, so it fetches one while it
applies another (the catch-up benchmark of `make bench` has a node miss far more)."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    params = ConsensusParams(checkpoint_interval=CHECKPOINT_INTERVAL, max_block_txs=1)
    devnet = Devnet.create(tmp_path_factory.mktemp("sync") / "net", 4, params)
    devnet.start_all()
    devnet.wait_until_up()
    yield devnet
    devnet.stop_all()


def send(client: Client, keyring: Keyring, who: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Sign, submit and wait for one tx that must succeed; its result."""
    done = client.wait_tx(client.submit(keyring.sign(who, kind, payload)), timeout=60)
    assert done["status"] == "committed", done["receipt"]
    result: dict[str, Any] = done["receipt"]["result"]
    return result


def place_orders(net: Devnet) -> tuple[int, list[dict[str, Any]]]:
    """Orders served by two organisations' warehouses, left released, shipped, delivered and cancelled; the
    height of the last one's block, and the list queries worth asking about them."""
    client = net.client(0)
    keyring = net.keyring(client)
    tee = {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}
    send(client, keyring, "operator-1", "sku.upsert", tee)
    for name, org, qty in (("WH-0", "org-0", 6), ("WH-1", "org-1", 20)):
        place = {"location": name, "type": "warehouse", "org": org, "region": "PT", "lat": 38_700_000}
        send(client, keyring, "operator-1", "location.upsert", {**place, "lon": -9_100_000})
        send(
            client, keyring, "operator-1", "stock.receive", {"location": name, "lines": [{"sku": "TEE-M", "qty": qty}]}
        )
    orders = [send(client, keyring, "channel-1", "order.create", order_payload(f"sync-{n}", 2)) for n in range(8)]
    fulfilments = [client.get(f"/v1/orders/{order['order_id']}")["fulfilments"][0] for order in orders]
    for fulfilment in fulfilments[:3]:
        shipment = {"fulfilment_id": fulfilment["fulfilment_id"], "carrier": "CTT", "tracking": "RR1"}
        send(client, keyring, "operator-1", "fulfilment.pick", {"fulfilment_id": fulfilment["fulfilment_id"]})
        send(client, keyring, "operator-1", "fulfilment.ship", shipment)
    send(client, keyring, "operator-1", "fulfilment.deliver", {"fulfilment_id": fulfilments[0]["fulfilment_id"]})
    send(client, keyring, "channel-1", "order.cancel", {"order_id": orders[3]["order_id"], "reason": "changed mind"})
    height: int = client.status()["height"]
    statuses = {order["status"] for order in client.pages("/v1/orders")}
    locations = {fulfilment["location"] for fulfilment in fulfilments}
    assert {"released", "shipped", "delivered", "cancelled"} <= statuses and locations == {"WH-0", "WH-1"}
    queries: list[dict[str, Any]] = [{}, {"channel": "channel-1"}, {"updated_min": 1}]
    queries += [{"status": status} for status in sorted(statuses)]
    queries += [{"location": location} for location in sorted(locations)]
    client.close()
    return height, queries


def money(client: Client, day: str) -> list[dict[str, Any]]:
    """Every page of a day's finance reconciliation."""
    params: dict[str, Any] = {"day": day, "limit": 2}
    pages = [client.get("/v1/reconciliations/finance", **params)]
    while pages[-1]["next_cursor"] is not None:
        pages.append(client.get("/v1/reconciliations/finance", **params, cursor=pages[-1]["next_cursor"]))
    return pages


P2P_READS: list[tuple[str, dict[str, int]]] = [
    ("/p2p/status", {}),
    ("/p2p/blocks", {"from": 1, "to": 3}),
    ("/p2p/snapshot", {}),
    ("/p2p/snapshot/0", {}),
    ("/p2p/addresses", {}),
]
"""Every read a node serves under `/p2p` (`node.api.p2p`)."""


def test_an_outsider_reads_nothing_under_p2p_while_member_nodes_do(net: Devnet) -> None:
    height = load(net, 0, "READS", seconds=2)
    url = net.nodes[0].url
    stranger, operator = PrivateKey.generate(), PrivateKey.load(net.clients_dir / "operator-1.key")
    now = lambda: int(time.time() * 1000)  # noqa: E731
    for path, params in P2P_READS:
        refusals = [(None, 401)]
        for who, key, code in (("node-1", stranger, 401), ("outsider", stranger, 403), ("operator-1", operator, 403)):
            sealer = ReadSealer(Sealer(key, who, net.genesis.chain_id), now)
            refusals.append((sealer.headers("node-0", path, params), code))
        for headers, code in refusals:
            answer = httpx.get(url + path, params=params, headers=headers, timeout=30)
            assert answer.status_code == code, (path, headers, answer.text)
            assert set(answer.json()) == {"error", "message"}, "a refusal carries nothing but the error"
        served = sealed_read(net, 1, 0, path, params)
        assert served.status_code in (200, 404), (path, served.text)
    blocks = decode_blocks(sealed_read(net, 3, 0, "/p2p/blocks", {"from": 1, "to": 3}).content)
    assert [block.height for block, _ in blocks] == [1, 2, 3]
    assert decode_status(sealed_read(net, 2, 0, "/p2p/status").content) >= height


def test_a_state_synced_node_lists_orders_as_a_node_that_replayed_every_block(net: Devnet) -> None:
    """Orders committed below the snapshot are in the lists and the day's money of the node that loaded it,
    which rebuilt them from the state it loaded (`node.reindex`)."""
    orders_height, queries = place_orders(net)
    net.kill(2)
    wipe(net, 2)
    height = load(net, 0, "LISTED", seconds=5)
    with node_process(net, 2, "--state-sync", log="state-sync.log"):
        wait_converged(net, height)
        synced = status(net.nodes[2].url)
        assert synced is not None and synced["base_height"] > orders_height, "the orders must be below the snapshot"
        text = (net.nodes[2].home / "state-sync.log").read_text()
        assert "state sync: rebuilt the lists and the money per day of " in text, text[-2000:]
        full, joined = net.client(0), net.client(2)
        for query in queries:
            params = {**query, "limit": 3}
            assert list(joined.pages("/v1/orders", **params)) == list(full.pages("/v1/orders", **params)), query
        assert len(list(full.pages("/v1/orders", channel="channel-1"))) == 8
        day = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%d")
        assert money(joined, day) == money(full, day) and money(full, day)[0]["flagged"]
        refused = joined.http.get("/v1/events", params={"after": "0"})
        assert refused.status_code == 410 and refused.json()["error"] == "cursor_before_feed", refused.text
        first = refused.json()["first_cursor"]
        assert joined.http.get("/v1/events", params={"after": str(int(first) - 1)}).status_code == 410
        receipt = {"location": "WH-0", "lines": [{"sku": "TEE-M", "qty": 1}]}
        send(full, net.keyring(full), "operator-1", "stock.receive", receipt)
        wait_converged(net, full.status()["height"])
        held = joined.get("/v1/events", after=first)["items"]
        assert held and all(event["height"] > synced["base_height"] for event in held)
        assert full.get("/v1/events", after="0")["items"][0]["height"] < synced["base_height"]
        full.close()
        joined.close()
    net.start(2)  # the devnet's own process again, so the tests after this one have all four nodes
    wait_converged(net, load(net, 0, "RESTARTED", seconds=1))


def test_killed_node_catches_up_to_the_same_head(net: Devnet) -> None:
    load(net, 0, "WARM", seconds=3)
    net.kill(3)
    before = status(net.nodes[0].url)
    assert before is not None
    height = load(net, 0, "KILLED", seconds=600, until_height=before["height"] + MISSED_BLOCKS)
    missed = height - before["height"]
    assert missed >= MISSED_BLOCKS
    net.start(3)
    started = time.monotonic()
    wait_converged(net, height, timeout=300)
    views = {row["view"] for row in (status(node.url) for node in net.nodes) if row is not None}
    assert views == {before["view"]}, "the restarted node suspected a working primary while it caught up"
    print(f"\nrestarted node caught up {missed} blocks in {time.monotonic() - started:.1f} s")


def test_wiped_node_rejoins_by_itself(net: Devnet) -> None:
    net.kill(2)
    wipe(net, 2)
    height = load(net, 0, "WIPED", seconds=LOAD_SECONDS)
    net.start(2)
    wait_converged(net, height)
    rejoined = status(net.nodes[2].url)
    assert rejoined is not None and rejoined["base_height"] >= 1
    after = load(net, 2, "REJOINED", seconds=2)
    wait_converged(net, after)


def commit_one(net: Devnet) -> dict[str, Any]:
    """A catalogue tx committed through node 0 (JSON form)."""
    client = net.client(0)
    sku = {"sku": "OLD", "price": 1, "currency": "EUR", "tax_class": "standard"}
    tx = net.keyring(client).sign("operator-1", "sku.upsert", sku)
    assert client.wait_tx(client.submit(tx), timeout=60)["status"] == "committed"
    client.close()
    return tx


def test_fresh_node_state_syncs_to_the_same_state_commitment_and_refuses_old_txs(net: Devnet) -> None:
    node = net.nodes[1]
    old = commit_one(net)
    net.kill(1)
    wipe(net, 1)
    height = load(net, 0, "SNAPSHOT", seconds=LOAD_SECONDS)
    with node_process(net, 1, "--state-sync", log="state-sync.log"):
        wait_converged(net, height)
        synced = status(node.url)
        assert synced is not None
        base = synced["base_height"]
        replay = net.client(1)
        refused = replay.http.post("/v1/tx", json=old)
        # Refused from the replicated state either way: as a replay while its window is open, as expired once the
        # chain has passed it (on a fast machine the blocks above can outrun the window).
        assert refused.status_code == 400
        assert refused.json()["error"] in ("duplicate_transaction", "expired_transaction")
        below = replay.http.get(f"/v1/tx/{tx_id(old)}")
        assert below.status_code == 404, "the tx is below the snapshot: this node holds no block of it"
        replay.close()
        text = (node.home / "state-sync.log").read_text()
        assert "state sync: loaded" in text, text[-2000:]
        assert base > 1 and base % CHECKPOINT_INTERVAL == 0
        reader = net.client(1)
        response = reader.http.get(f"/v1/blocks/{base - 1}")
        assert response.status_code == 404 and "state sync" in response.json()["message"]
        assert reader.http.get(f"/v1/blocks/{base}").status_code == 200
        reader.close()
        after = load(net, 1, "AFTER-SNAPSHOT", seconds=2)
        wait_converged(net, after)
