"""Every shipped message template renders real orders of the demo, with the orders' own values in the text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import queries
from devnet.scenario import run_demo
from ledger.genesis import Genesis
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE
from node.home import create_network
from node.notify.messages import CHANNELS, MessageError, MessageTemplates, format_money
from omsclient import Keyring
from tests.helpers.api import bearer, commit, make_token
from tests.helpers.executed import ExecutedLedger

SHIPPED = {"order.created", "order.cancelled", "fulfilment.shipped", "payment.refunded"}


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """The demo's orders, as the API shows them."""
    ledger = ExecutedLedger(tmp_path_factory.mktemp("messages") / "db")
    run_demo(ledger.submit, ledger.query, lambda line: None)
    state = ledger.state
    yield [queries.get_order(state, record["order_id"]) for _, record in state.scan("order/")]
    ledger.close()


def concerns(event: str, order: dict[str, Any]) -> bool:
    """Whether the event of a template happened to `order`."""
    if event == "order.cancelled":
        return bool(order["cancellations"])
    if event == "fulfilment.shipped":
        return any(f["status"] in ("shipped", "delivered") for f in order["fulfilments"])
    if event == "payment.refunded":
        return order["payment"]["refunded"] > 0
    return True


def test_the_package_ships_a_template_of_each_event_for_each_channel() -> None:
    assert MessageTemplates().names() == sorted(f"{event}.{channel}" for event in SHIPPED for channel in CHANNELS)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("event", sorted(SHIPPED))
def test_each_template_renders_the_demo_orders_it_concerns(
    orders: list[dict[str, Any]], event: str, channel: str
) -> None:
    templates = MessageTemplates()
    rendered = 0
    for order in (o for o in orders if concerns(event, o)):
        message = templates.render(event, channel, order)  # type: ignore[arg-type]
        assert order["external_ref"] in message.text
        assert (message.subject is not None) == (channel == "email")
        if channel == "email":
            assert order["external_ref"] in (message.subject or "")
        if event == "order.created":
            assert format_money(order["total"], order["currency"]) in message.text
            if channel == "email":
                assert all(line["sku"] in message.text for line in order["lines"])
        if event == "fulfilment.shipped":
            shipped = [f for f in order["fulfilments"] if f["status"] in ("shipped", "delivered")][-1]
            assert shipped["carrier"] in message.text and shipped["tracking"] in message.text
        if event == "payment.refunded":
            assert format_money(order["payment"]["refunded"], order["currency"]) in message.text
        if event == "order.cancelled" and order["cancellations"][-1]["amount"]:
            assert format_money(order["cancellations"][-1]["amount"], order["currency"]) in message.text
        rendered += 1
    assert rendered, f"the demo has no order that {event} concerns"


def test_a_template_of_the_nodes_home_takes_precedence_and_runs_sandboxed(
    orders: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "order.created.sms.j2").write_text("Hi! {{ order.order_id }}")
    (tmp_path / "order.escape.sms.j2").write_text("{{ order.__class__.__mro__ }}")
    templates = MessageTemplates(tmp_path)
    assert templates.render("order.created", "sms", orders[0]).text == f"Hi! {orders[0]['order_id']}"
    with pytest.raises(MessageError, match="fails on order"):
        templates.render("order.escape", "sms", orders[0])
    with pytest.raises(MessageError, match="no template"):
        templates.render("../order.created", "sms", orders[0])
    with pytest.raises(MessageError, match="no template"):
        templates.render("order.unknown", "sms", orders[0])


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "EUR", "19.99 EUR"),
        (5, "EUR", "0.05 EUR"),
        (-250, "USD", "-2.50 USD"),
        (1500, "JPY", "1500 JPY"),
        (1, "KWD", "0.001 KWD"),
    ],
)
def test_money_shows_minor_units_as_a_decimal_amount(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


def test_the_api_renders_a_message_of_an_order_the_token_reads(tmp_path: Path) -> None:
    home = tmp_path / "node-0"
    create_network([home], [0], home / CLIENTS_DIR)
    with TestClient(create_app(home), headers=bearer(make_token(home))) as client:
        valid_until = lambda: int(client.get("/v1/status").json()["tx_valid_until"])  # noqa: E731
        signer = Keyring(home / CLIENTS_DIR, Genesis.load(home / GENESIS_FILE).chain_id, valid_until)
        place = {
            "location": "LIS-1",
            "type": "store",
            "org": "org-0",
            "region": "PT",
            "lat": 38_722_000,
            "lon": -8_600_000,
        }
        for kind, payload in (
            ("sku.upsert", {"sku": "TEE", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
            ("location.upsert", place),
            ("stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE", "qty": 5}]}),
        ):
            commit(client, signer.sign_tx("operator-1", kind, payload))
        order = {
            "external_ref": "WEB-1",
            "currency": "EUR",
            "customer_hash": "ab" * 32,
            "payment_terms": "on_account",
            "lines": [{"sku": "TEE", "qty": 2}],
            "delivery": {"region": "PT", "lat": 38_700_000, "lon": -8_600_000},
        }
        made = commit(client, signer.sign_tx("channel-1", "order.create", order))
        order_id = made["receipt"]["result"]["order_id"]
        sms = client.get(f"/v1/orders/{order_id}/messages/order.created", params={"channel": "sms"})
        assert sms.status_code == 200, sms.text
        assert sms.json()["subject"] is None and "WEB-1" in sms.json()["text"] and "39.98 EUR" in sms.json()["text"]
        email = client.get(f"/v1/orders/{order_id}/messages/order.created").json()
        assert email["channel"] == "email" and "WEB-1" in email["subject"]
        missing = client.get(f"/v1/orders/{order_id}/messages/order.teleported")
        assert missing.status_code == 404 and missing.json()["error"] == "no_message"
        assert client.get(f"/v1/orders/{order_id}/messages/order.created", params={"channel": "fax"}).status_code == 422
        assert client.get("/v1/orders/SO-NONE/messages/order.created").status_code == 404
