"""The web page in a real browser: Playwright drives Debian's chromium against a node that took the demo.

It signs in with an operator's token, opens an order of the demo and checks
what the page shows against the API, then opens an order held in review,
approves it with the page's button and sees its status move. Screenshots of
each page are written to the test's temporary directory. Where Playwright
or chromium is not installed the test is skipped, saying which; it never
installs a browser.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SingleNode

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Debian's chromium is not installed at {CHROMIUM}"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000
"""Generous: the machine running the tests may be busy."""


def hold_an_order(node: SingleNode) -> str:
    """An order the review rules hold (a quantity over the limit), as the demo's own held order was, and the
    stock that approving it will allocate."""
    payload = {
        "external_ref": "WEB-9001",
        "customer_hash": "9" * 64,
        "currency": "EUR",
        "delivery": {"region": "NL", "lat": 52_100_000, "lon": 5_100_000},
        "lines": [{"sku": "MUG-WHT", "qty": 120, "unit_price": 899}],
    }
    result: dict[str, Any] = node.send("channel-1", "order.create", payload)["receipt"]["result"]
    assert result["status"] == "on_hold", result
    receipt = {"location": "RTM-DC", "document": "PO-9001", "lines": [{"sku": "MUG-WHT", "qty": 120}]}
    assert node.send("operator-1", "stock.receive", receipt)["receipt"]["ok"]
    return str(result["order_id"])


def test_sign_in_see_a_demo_order_and_approve_a_held_one(demo_node: SingleNode, tmp_path: Path) -> None:
    client = demo_node.client
    (first,) = client.get("/v1/orders", limit=1)["items"]
    order = client.get(f"/v1/orders/{first['order_id']}")
    held = hold_an_order(demo_node)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(demo_node.url + "/")
            page.fill("#token", demo_node.token)
            page.click("#signin button")
            page.wait_for_selector(f"a[href='#order/{order['order_id']}']")
            page.screenshot(path=str(tmp_path / "orders.png"), full_page=True)

            page.click(f"a[href='#order/{order['order_id']}']")
            page.wait_for_selector("#order-id")
            assert page.text_content("#order-id") == order["order_id"]
            assert page.text_content("#order-status") == order["status"]
            assert page.locator(".timeline li").count() == len(order["history"])
            page.screenshot(path=str(tmp_path / "order.png"), full_page=True)

            page.goto(f"{demo_node.url}/#order/{held}")
            page.wait_for_selector("#approve")
            assert page.text_content("#order-status") == "on_hold"
            page.click("#approve")
            sync_api.expect(page.locator("#order-status")).not_to_have_text("on_hold", timeout=WAIT_MS)
            status = page.text_content("#order-status")
            assert status == client.get(f"/v1/orders/{held}")["status"] != "on_hold"
            page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)

            page.goto(f"{demo_node.url}/#analytics")
            page.wait_for_selector("svg .bar")
            page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)
        finally:
            browser.close()
