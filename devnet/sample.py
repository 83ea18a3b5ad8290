"""Sample data for `make run`: a small catalogue, one location per distribution point, and stock.

So that a new user's first `GET /v1/inventory` shows something and a first
order can be placed at once (see the README).
"""

from __future__ import annotations

from typing import Any

from devnet.network import Devnet
from omsclient import Keyring

OPERATOR = "operator-1"

SAMPLE_SKUS = (
    ("TSHIRT-M", "T-shirt, size M", 1999, "standard"),
    ("JEANS-32", "Jeans, 32", 4999, "standard"),
    ("BOOK-OMS", "Order Management, a book", 2900, "reduced"),
)
"""(sku, name, price in cents, tax class)."""

SAMPLE_CITIES = (
    ("LIS", "Lisbon", 38_722_000, -9_139_000),
    ("MAD", "Madrid", 40_416_000, -3_703_000),
    ("PAR", "Paris", 48_856_000, 2_352_000),
    ("BER", "Berlin", 52_520_000, 13_405_000),
    ("AMS", "Amsterdam", 52_373_000, 4_892_000),
    ("ROM", "Rome", 41_902_000, 12_496_000),
    ("VIE", "Vienna", 48_208_000, 16_373_000),
)


def sample_txs(keyring: Keyring, nodes: int) -> list[dict[str, Any]]:
    txs = [
        keyring.sign(
            OPERATOR, "sku.upsert", {"sku": sku, "name": name, "price": price, "currency": "EUR", "tax_class": tax}
        )
        for sku, name, price, tax in SAMPLE_SKUS
    ]
    for i in range(nodes):
        code, city, lat, lon = SAMPLE_CITIES[i % len(SAMPLE_CITIES)]
        location = f"STORE-{code}-{i}"
        txs.append(
            keyring.sign(
                OPERATOR,
                "location.upsert",
                {
                    "location": location,
                    "name": f"{city} store",
                    "type": "store",
                    "org": f"org-{i}",
                    "region": code,
                    "lat": lat,
                    "lon": lon,
                    "pickup_allowed": True,
                    "priority": 100,
                },
            )
        )
        lines = [{"sku": sku, "qty": 20 + 10 * i} for sku, *_ in SAMPLE_SKUS]
        txs.append(
            keyring.sign(OPERATOR, "stock.receive", {"location": location, "lines": lines, "document": "PO-SAMPLE"})
        )
    return txs


def load_sample_data(devnet: Devnet) -> str:
    """Send the sample txs to node 0 and wait until they are committed; returns a one-line summary."""
    with devnet.client(0) as client:
        txs = sample_txs(devnet.keyring(client), len(devnet.nodes))
        for tx, verdict in zip(txs, client.submit_many(txs), strict=True):
            if not verdict["accepted"]:
                raise RuntimeError(f"sample tx {tx['kind']} was refused: {verdict['message']}")
            status = client.wait_tx(verdict["tx_id"])
            if status["status"] != "committed":
                raise RuntimeError(f"sample tx {tx['kind']} was not committed: {status['reason']}")
    return f"{len(SAMPLE_SKUS)} SKUs, {len(devnet.nodes)} stores with stock"
