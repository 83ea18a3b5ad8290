"""`omsclient` against a real node process, as an integrator holding its own key uses it.

Sign with a key file and submit, wait for the commit, write through a
resource route with an idempotency key (twice: one action), read lists page
by page and follow the change feed; errors come back as `NodeError` with the
node's code.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from omsclient import Client, NodeError, Signer, tx_id
from tests.e2e.conftest import SingleNode
from tests.e2e.integrator import order_payload

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNode]:
    single = SingleNode(tmp_path_factory.mktemp("omsclient") / "home")
    single.start()
    for kind, payload in (
        ("sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
        ("sku.upsert", {"sku": "MUG", "price": 900, "currency": "EUR", "tax_class": "standard"}),
        ("location.upsert", {"location": "LIS-1", "type": "store", "org": "org-0", "region": "PT", "lat": 1, "lon": 1}),
        ("stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 50}]}),
    ):
        assert single.send("operator-1", kind, payload)["status"] == "committed"
    yield single
    single.stop()
    single.client.close()


@pytest.fixture
def channel(node: SingleNode) -> Iterator[Client]:
    token = node.make_token("channel-1", "orders:read,orders:write,events:read")
    with Client(node.url, token) as client:
        yield client


def test_an_order_signed_with_the_channels_own_key_commits(node: SingleNode, channel: Client) -> None:
    signer = Signer.from_key_file(Path(node.home) / "clients" / "channel-1.key", "channel-1")
    tx = signer.sign(
        "order.create", order_payload("own-key-1"), chain_id=channel.chain_id(), valid_until=channel.valid_until()
    )
    sent = channel.submit(tx)
    assert sent == tx_id(tx)
    done = channel.wait_tx(sent, timeout=120)
    assert done["status"] == "committed", done
    order_id = done["receipt"]["result"]["order_id"]
    assert channel.get(f"/v1/orders/{order_id}")["external_ref"] == "own-key-1"
    assert channel.submit(tx) == sent, "a committed tx sent again is the same tx, not an error"


def test_an_action_signed_again_under_its_idempotency_key_runs_once(node: SingleNode, channel: Client) -> None:
    signer = Signer.from_key_file(Path(node.home) / "clients" / "channel-1.key", "channel-1")
    order = order_payload("keyed-1")
    signed = [
        signer.sign("order.create", order, chain_id=channel.chain_id(), valid_until=window, idempotency_key="keyed-1")
        for window in (channel.valid_until(), channel.valid_until() + 1)
    ]
    assert tx_id(signed[0]) != tx_id(signed[1]) and signed[0]["nonce"] == signed[1]["nonce"] < 0
    first = channel.wait_tx(channel.submit(signed[0]), timeout=120)
    again = channel.wait_tx(channel.submit(signed[1]), timeout=120)
    assert first["status"] == "committed", first
    assert again["status"] == "rejected" and again["receipt"]["code"] == "duplicate_request", again
    assert again["receipt"]["result"]["tx_id"] == first["tx_id"]


def test_an_idempotent_write_is_one_action_and_another_body_under_its_key_a_conflict(channel: Client) -> None:
    body = order_payload("idem-1")
    first = channel.post("/v1/orders", body, idempotency_key="idem-1", wait="commit")
    again = channel.post("/v1/orders", body, idempotency_key="idem-1", wait="commit")
    assert first["status"] == "committed" and again["tx_id"] == first["tx_id"]
    assert again["resource"]["order_id"] == first["resource"]["order_id"]
    with pytest.raises(NodeError) as refused:
        channel.post("/v1/orders", order_payload("idem-2"), idempotency_key="idem-1")
    assert refused.value.status == 409 and refused.value.code == "idempotency_conflict"


def test_pages_read_a_whole_list_and_errors_carry_the_nodes_code(node: SingleNode) -> None:
    assert [sku["sku"] for sku in node.client.pages("/v1/skus", limit=1)] == ["MUG", "TEE-M"]
    with pytest.raises(NodeError) as missing:
        node.client.get("/v1/orders/NO-SUCH-ORDER")
    assert missing.value.status == 404 and missing.value.code == "not_found" and missing.value.message


def test_follow_reads_the_feed_from_the_start_and_resumes_after_a_cursor(channel: Client) -> None:
    channel.post("/v1/orders", order_payload("feed-1"), idempotency_key="feed-1", wait="commit")
    events = list(itertools.islice(channel.follow(types=["order.status"], wait=5), 2))
    assert [e["type"] for e in events] == ["order.status"] * 2
    (resumed,) = itertools.islice(channel.follow(after=events[0]["cursor"], types=["order.status"], wait=5), 1)
    assert resumed == events[1]
