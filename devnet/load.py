"""The workload of the devnet benchmark (`devnet.bench`): SKUs stocked at a warehouse per node, and orders.

Every basket becomes one `order.create` payload with its own external
reference (tagged per run, so runs on one devnet never collide), delivered
near the warehouses. The warehouses are one per node, the same on every run;
each run stocks its SKUs there with enough for every basket, so allocation
always finds stock and every order commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from devnet.baskets import Basket
from devnet.network import Devnet
from omsclient import Client, Keyring, NodeError

SignedTx = TypeVar("SignedTx")

CHANNEL = "channel-1"
OPERATOR = "operator-1"


def _skus(baskets: Iterable[Basket]) -> dict[str, int]:
    prices: dict[str, int] = {}
    for basket in baskets:
        for line in basket:
            prices.setdefault(line.sku, line.price)
    return prices


def prepare_stock(client: Client, keyring: Keyring, devnet: Devnet, baskets: list[Basket]) -> None:
    """Register the baskets' SKUs and a warehouse per node (the same ones on every run, as a retailer's network
    is: a run does not add locations for the next run's orders to weigh), and stock each with plenty of each."""
    prices = _skus(baskets)
    setup: list[dict[str, Any]] = [
        keyring.sign(OPERATOR, "sku.upsert", {"sku": sku, "price": price, "currency": "EUR", "tax_class": "standard"})
        for sku, price in prices.items()
    ]
    locations = [f"LOAD-{i}" for i in range(len(devnet.nodes))]
    for i, location in enumerate(locations):
        setup.append(
            keyring.sign(
                OPERATOR,
                "location.upsert",
                {
                    "location": location,
                    "type": "warehouse",
                    "org": f"org-{i}",
                    "region": "BR",
                    "lat": -23_550_000 + i * 100_000,
                    "lon": -46_633_000,
                    "priority": 100,
                },
            )
        )
    need = len(baskets) * 4
    sku_list = sorted(prices)
    for location in locations:
        for start in range(0, len(sku_list), 100):
            lines = [{"sku": sku, "qty": need} for sku in sku_list[start : start + 100]]
            setup.append(keyring.sign(OPERATOR, "stock.receive", {"location": location, "lines": lines}))
    verdicts = client.submit_many(setup)
    refused = [verdict for verdict in verdicts if not verdict["accepted"]]
    if refused:
        raise NodeError(400, {"error": refused[0]["error"], "message": refused[0]["message"]})
    client.wait_tx(verdicts[-1]["tx_id"], timeout=120)


def make_orders(
    sign: Callable[[str, str, dict[str, Any]], SignedTx], baskets: list[Basket], tag: str
) -> list[SignedTx]:
    """One `order.create` tx per basket (`make_order_payloads`) from the load channel, signed by `sign`
    (`Keyring.sign` for a devnet, a test network's own `tx`)."""
    return [sign(CHANNEL, "order.create", payload) for payload in make_order_payloads(baskets, tag)]


def make_order_payloads(baskets: list[Basket], tag: str) -> list[dict[str, Any]]:
    """One `order.create` payload per basket, each with its own external reference."""
    return [
        {
            "external_ref": f"load-{tag}-{i}",
            "currency": "EUR",
            "customer_hash": f"{i:064x}",
            "payment_terms": "on_account",
            "lines": [{"sku": line.sku, "qty": line.qty} for line in basket],
            "delivery": {"region": "BR", "lat": -23_500_000, "lon": -46_600_000},
        }
        for i, basket in enumerate(baskets)
    ]
