"""The web page in a real browser: Playwright drives Debian's chromium against a 4-node devnet that took the demo.

One devnet, one demo, one browser for the module. An operator signs in,
opens every view and checks what it shows against the API of the node that
serves the page: an order of the demo with its history, fulfilments and
proof; the peers; the inventory heat map and its low-stock flags; a SKU's
stock journal and a lot's chain of custody; the channels; the charts; the
analytics. A node is then killed: the page shows it unreachable, approves
a held order (it moves) while the node is down, and shows the node back
once restarted. The node serving the page is killed and restarted under it
too, and a dead webhook delivery is replayed with the page's button. A
store of a second organisation (added by governance)
sees its own organisation's order and stock only, where the operator sees
all.

Screenshots of each view are written to `OMS_PAGE_SCREENSHOTS` if set (the
README's come from there), else to the test's temporary directory. Where
Playwright or chromium is not installed the test is skipped, saying which;
it never downloads a browser (`make test` installs Debian's chromium where
it can, `Makefile`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from devnet.demo import run_devnet_demo
from devnet.network import Devnet
from ledger.keys import PrivateKey
from node.config import NodeConfig
from node.tokens import TokenStore, parse_scopes
from omsclient import Client, Keyring
from tests.helpers.receiver import Plan, Receiver

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

CHROMIUM = os.environ.get("OMS_CHROMIUM", "/usr/bin/chromium")
"""Debian's chromium; Playwright is pointed at it and never downloads a browser of its own."""

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"no chromium at {CHROMIUM}: `make test` installs Debian's `chromium` when run as root with apt-get",
    ),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000
"""Generous: the machine running the tests may be busy."""

SERVED = 0
"""The devnet node whose page the browser opens."""

KILLED = 2
"""The node killed and restarted while the page is in use."""


@pytest.fixture(scope="module")
def demo_devnet(devnet: Devnet) -> Devnet:
    """The devnet after the demo, with a safety stock above what one location has of a SKU (a low-stock flag)."""
    run_devnet_demo(devnet, say=lambda line: None)
    with devnet.client(SERVED, timeout=30) as client:
        safety = {"location": "UTR-DC", "sku": "MUG-WHT", "qty": 50}
        assert client.post("/v1/inventory/safety-stock", safety, wait="commit")["status"] == "committed"
    return devnet


class OtherStore(NamedTuple):
    """A store of another organisation than the demo's, and what it may see."""

    token: str
    location: str
    order_id: str


@pytest.fixture(scope="module")
def other_store(demo_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> OtherStore:
    """A store identity of `org-1`, added by governance (proposed by the demo's operator, approved by the
    validators of two other organisations), with a store of its own where one order of the web shop is
    collected; a token of it that every node accepts. Everything else of the demo is `org-0`'s alone."""
    keys = tmp_path_factory.mktemp("keys")
    others = [v for v in demo_devnet.genesis.validators if v.org != "org-0"][:2]
    for validator in others:
        node = next(n for n in demo_devnet.nodes if demo_devnet.status(n.index)["node_id"] == validator.id)
        shutil.copyfile(node.home / "node_key", keys / f"{validator.id}.key")
    key = PrivateKey.generate()
    key.save(keys / "store-9.key")
    with demo_devnet.client(SERVED, timeout=30) as client:
        members = demo_devnet.keyring(client)
        validators = Keyring(keys, demo_devnet.genesis.chain_id, client.valid_until)

        def send(keyring: Keyring, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
            receipt: dict[str, Any] = client.wait_tx(client.submit(keyring.sign(signer, kind, payload)))["receipt"]
            assert receipt["ok"], receipt
            return dict(receipt["result"])

        params = {"id": "store-9", "org": "org-1", "public_key": key.public.hex(), "roles": ["store"]}
        proposal = send(members, "operator-1", "governance.propose", {"action": "client.add", "params": params})
        for validator in others:
            send(validators, validator.id, "governance.approve", {"proposal": proposal["proposal"]})
        place = {"location": "DH-STORE", "type": "store", "org": "org-1", "region": "NL", "lat": 52_070_000}
        place |= {"lon": 4_300_000, "ships_online": False, "pickup_allowed": True, "priority": 50}
        send(members, "operator-1", "location.upsert", place)
        stock = {"location": "DH-STORE", "document": "PO-9002", "lines": [{"sku": "TEE-BLK-M", "qty": 5}]}
        send(members, "operator-1", "stock.receive", stock)
        order: dict[str, Any] = {"external_ref": "WEB-9002", "customer_hash": "8" * 64, "currency": "EUR"}
        order |= {"pickup": "DH-STORE"}
        order["lines"] = [{"sku": "TEE-BLK-M", "qty": 1, "unit_price": 1999}]
        placed = send(members, "channel-1", "order.create", order)
    scopes = parse_scopes("orders:read,inventory:read,events:read")
    token: str | None = None
    for node in demo_devnet.nodes:
        store = TokenStore(node.home)
        token = store.create(demo_devnet.genesis, "store-9", scopes, "page test", token=token, added=True)
    assert token is not None
    return OtherStore(token, "DH-STORE", str(placed["order_id"]))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("OMS_PAGE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(demo_devnet: Devnet) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def api(demo_devnet: Devnet) -> Iterator[Client]:
    client = demo_devnet.client(SERVED, timeout=30)
    yield client
    client.close()


def sign_in(browser: Any, devnet: Devnet, token: str) -> Any:
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.set_default_timeout(WAIT_MS)
    page.goto(devnet.node(SERVED).url + "/")
    page.fill("#token", token)
    page.click("#signin button")
    page.wait_for_selector("#orders")
    return page


def open_view(page: Any, hash_: str, ready: str) -> None:
    """Go to a view and wait until it is drawn."""
    page.evaluate("hash => { location.hash = hash; }", hash_)
    page.wait_for_selector(ready)


def shoot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"))


def texts(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_text_contents()]


def table_rows(page: Any, selector: str) -> list[dict[str, str]]:
    """The rows of a table the page drew, by column heading."""
    headings = texts(page, f"{selector} th")
    read = "rows => rows.slice(1).map(row => [...row.cells].map(cell => cell.textContent))"
    cells = page.locator(f"{selector} tr").evaluate_all(read)
    return [dict(zip(headings, row, strict=True)) for row in cells if len(row) == len(headings)]


def hold_an_order(devnet: Devnet, client: Client) -> str:
    """An order the review rules hold (a quantity over the limit), and the stock approving it will allocate."""
    keyring = devnet.keyring(client)

    def send(signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        receipt: dict[str, Any] = client.wait_tx(client.submit(keyring.sign(signer, kind, payload)))["receipt"]
        return receipt

    order = {
        "external_ref": "WEB-9001",
        "customer_hash": "9" * 64,
        "currency": "EUR",
        "delivery": {"region": "NL", "lat": 52_100_000, "lon": 5_100_000},
        "lines": [{"sku": "MUG-WHT", "qty": 120, "unit_price": 899}],
    }
    result = send("channel-1", "order.create", order)["result"]
    assert result["status"] == "on_hold", result
    receipt = {"location": "RTM-DC", "document": "PO-9001", "lines": [{"sku": "MUG-WHT", "qty": 120}]}
    assert send("operator-1", "stock.receive", receipt)["ok"]
    return str(result["order_id"])


def test_an_operator_sees_every_view_as_the_api_answers(
    demo_devnet: Devnet, browser: Any, api: Client, shots: Path
) -> None:
    page = sign_in(browser, demo_devnet, demo_devnet.token)
    try:
        assert "operator-1 (org-0)" in page.text_content("#live")
        listed = api.get("/v1/orders", limit=100)["items"]
        assert texts(page, "#orders td.col-order_id") == [o["order_id"] for o in listed]
        shoot(page, shots, "orders")

        split = next(o for o in listed if len(o["locations"]) > 1)
        order = api.get(f"/v1/orders/{split['order_id']}")
        page.click(f"a[href='#order/{order['order_id']}']")
        page.wait_for_selector("#order-id")
        assert page.text_content("#order-id") == order["order_id"]
        assert page.text_content("#order-status") == order["status"]
        assert page.locator(".timeline li").count() == len(order["history"])
        assert page.locator("#fulfilments li").count() == len({f["location"] for f in order["fulfilments"]})
        with page.expect_download() as download:
            page.click("#proof")
        proof = Path(download.value.path()).read_bytes()
        assert proof == api.http.get(f"/v1/proofs/order/{order['order_id']}").content
        shoot(page, shots, "order")

        open_view(page, "network", "#peers")
        status = api.status()
        assert texts(page, "#node td.col-node") == [status["node_id"]]
        peers = {peer["id"] for peer in api.get("/v1/peers")}
        rows = page.locator("#peers tr[data-peer]")
        assert {rows.nth(i).get_attribute("data-peer") for i in range(rows.count())} == peers
        assert page.locator("#commit-rate .bar").count() == 30
        shoot(page, shots, "network")

        check_inventory(page, api, shots)
        check_channels_charts_analytics(page, api, shots)
    finally:
        page.close()


def check_inventory(page: Any, api: Client, shots: Path) -> None:
    stock = list(api.pages("/v1/inventory", limit=500))
    open_view(page, "inventory", "#heatmap")
    for row in stock:
        cell = page.locator(f"#heatmap td[data-location='{row['location']}'][data-sku='{row['sku']}']")
        assert cell.text_content().split()[0] == str(row["available"]), row
        is_low = row["safety"] > 0 and row["available"] < row["safety"]
        assert ("low" in (cell.get_attribute("class") or "")) == is_low, row
    low = [[r["location"], r["sku"]] for r in stock if r["safety"] > 0 and r["available"] < r["safety"]]
    assert low, "the test set a safety stock above what a location has"
    assert [[row["location"], row["sku"]] for row in table_rows(page, "#low-stock")] == low
    shoot(page, shots, "inventory")

    journal = api.get("/v1/journal", sku="MUG-WHT", limit=200)["items"]
    page.click("#heatmap a[href='#journal/MUG-WHT']")
    page.wait_for_selector("#journal")
    assert texts(page, "#journal td.col-seq") == [str(e["seq"]) for e in journal]
    location = journal[0]["location"]
    page.fill("#view form input[name=location]", location)
    page.fill("#view form input[name=kind]", "receipt")
    page.click("#view form button")
    page.wait_for_url(f"**#journal/MUG-WHT?location={location}&kind=receipt")
    page.wait_for_selector("#journal")
    kept = api.get("/v1/journal", sku="MUG-WHT", location=location, kind="receipt", limit=200)["items"]
    sync_api.expect(page.locator("#journal td.col-seq")).to_have_count(len(kept))
    assert set(texts(page, "#journal td.col-kind")) == {"receipt"}
    shoot(page, shots, "journal")

    lot = next(e["lot"] for e in api.pages("/v1/journal", limit=500) if e["lot"])
    trace = api.get(f"/v1/trace/{lot}")
    open_view(page, f"lot/{lot}", "#trace")
    assert page.text_content("#lot-id") == lot
    assert page.locator("#trace li").count() == len(trace["items"]) > 0
    shoot(page, shots, "lot")


def check_channels_charts_analytics(page: Any, api: Client, shots: Path) -> None:
    activity = api.get("/v1/activity")
    open_view(page, "channels", "#channels")
    assert texts(page, "#channels td.col-channel") == [c["channel"] for c in activity["channels"]]
    page.wait_for_selector("#dead-letters")
    shoot(page, shots, "channels")

    open_view(page, "charts", "#block-size")
    activity = api.get("/v1/activity")
    bars = {chart: page.locator(f"#{chart} .bar").count() for chart in ("orders-per-minute", "block-size")}
    assert bars == {"orders-per-minute": 30, "block-size": min(len(activity["commits"]), 60)} and bars["block-size"]
    loads = page.locator("#fulfilment-load .bar title").all_text_contents()
    assert loads == [f"{row['location']}: {row['open']}" for row in activity["backlog"]]
    shoot(page, shots, "charts")

    open_view(page, "analytics", "#allocation")
    (allocation,) = api.get("/v1/analytics/allocation")["rows"]
    assert texts(page, "#allocation td.col-orders") == [str(allocation["orders"])]
    shoot(page, shots, "analytics")


def test_the_page_approves_a_held_order_while_a_node_is_killed_and_restarted(
    demo_devnet: Devnet, browser: Any, api: Client, shots: Path
) -> None:
    held = hold_an_order(demo_devnet, api)
    killed = demo_devnet.status(KILLED)["node_id"]
    page = sign_in(browser, demo_devnet, demo_devnet.token)
    try:
        demo_devnet.kill(KILLED)
        open_view(page, "network", "#peers")
        health = page.locator(f"#peers tr[data-peer='{killed}'] td.col-health")
        sync_api.expect(health).to_have_text("unreachable", timeout=WAIT_MS)
        shoot(page, shots, "network-node-down")

        open_view(page, f"order/{held}", "#approve")
        assert page.text_content("#order-status") == "on_hold"
        page.click("#approve")
        sync_api.expect(page.locator("#order-status")).not_to_have_text("on_hold", timeout=WAIT_MS)
        assert page.text_content("#order-status") == api.get(f"/v1/orders/{held}")["status"] != "on_hold"
        shoot(page, shots, "approved")

        demo_devnet.start(KILLED)
        demo_devnet.wait_until_up([KILLED])
        open_view(page, "network", "#peers")
        sync_api.expect(health).to_have_text("up", timeout=WAIT_MS)
        assert "unreachable" not in page.text_content("#live")
    finally:
        page.close()
        demo_devnet.start(KILLED)


def test_an_operator_replays_a_dead_letter_from_the_page_across_a_restart_of_its_node(
    demo_devnet: Devnet, browser: Any, api: Client, shots: Path
) -> None:
    """The served node is killed under the page (which says so) and restarted with one attempt per webhook
    delivery; a receiver that fails every request makes a delivery dead; once the receiver is mended the
    page's Replay button delivers it."""
    served = demo_devnet.node(SERVED)
    page = sign_in(browser, demo_devnet, demo_devnet.token)
    receiver = Receiver(Plan(fail_rate=1.0))
    try:
        open_view(page, "channels", "#dead-letters")
        demo_devnet.kill(SERVED)
        sync_api.expect(page.locator("#live")).to_contain_text("node unreachable", timeout=WAIT_MS)
        config = dataclasses.replace(NodeConfig.load(served.home), webhook_max_attempts=1, webhook_timeout_ms=2_000)
        config.save(served.home)
        demo_devnet.start(SERVED)
        demo_devnet.wait_until_up([SERVED])
        sync_api.expect(page.locator("#live")).to_contain_text("height", timeout=WAIT_MS)

        api.post("/v1/webhooks", {"url": receiver.url, "events": ["order.created"]})
        order: dict[str, Any] = {"external_ref": "WEB-9003", "customer_hash": "7" * 64, "currency": "EUR"}
        order["pickup"] = "AMS-STORE"
        order["lines"] = [{"sku": "TEE-BLK-M", "qty": 1, "unit_price": 1999}]
        keyring = demo_devnet.keyring(api)
        assert api.wait_tx(api.submit(keyring.sign("channel-1", "order.create", order)))["receipt"]["ok"]
        replay = page.locator("#dead-letters button.replay")
        sync_api.expect(replay).to_have_count(1, timeout=WAIT_MS)
        (dead,) = [d for d in api.get("/v1/webhooks/deliveries", failed="true")["items"] if d["status"] == "dead"]
        assert texts(page, "#dead-letters td.col-id") == [dead["id"]]
        shoot(page, shots, "dead-letter")

        receiver.plan.fail_rate = 0.0
        replay.click()
        sync_api.expect(replay).to_have_count(0, timeout=WAIT_MS)
        assert dead["id"] in receiver.unique()
        delivered = [d for d in api.get("/v1/webhooks/deliveries")["items"] if d["id"] == dead["id"]]
        assert [d["status"] for d in delivered] == ["delivered"]
    finally:
        page.close()
        receiver.close()
        demo_devnet.start(SERVED)


def test_a_store_sees_its_own_orders_and_an_operator_all(
    demo_devnet: Devnet, browser: Any, api: Client, other_store: OtherStore, shots: Path
) -> None:
    with Client(demo_devnet.node(SERVED).url, other_store.token, timeout=30) as store:
        own = [o["order_id"] for o in store.pages("/v1/orders", limit=100)]
    every = [o["order_id"] for o in api.pages("/v1/orders", limit=100)]
    assert own == [other_store.order_id] and other_store.order_id in every and len(every) > 1

    page = sign_in(browser, demo_devnet, other_store.token)
    try:
        assert texts(page, "#orders td.col-order_id") == own
        assert "store-9 (org-1)" in page.text_content("#live")
        shoot(page, shots, "store-orders")
        open_view(page, "inventory", "#heatmap")
        assert texts(page, "#heatmap tr:first-child th")[1:] == [other_store.location]
        hidden = next(order_id for order_id in every if order_id not in own)
        open_view(page, f"order/{hidden}", "#view-error")
        assert "no order" in page.text_content("#view-error")
    finally:
        page.close()
