"""A sales channel for tests: a real HTTP server serving orders in Shopify's format and the generic one.

`ChannelServer` holds a shop's orders (`add_shopify`, `add_generic`, and
`cancel` to cancel one after it was pulled, which moves its `updated_at`) and
serves them as Shopify's Admin REST API does (`/admin/api/<version>/orders.json`:
`X-Shopify-Access-Token`, `status=any`, `updated_at_min`, `order=updated_at
asc`, `limit`, then `Link: <...page_info=...>; rel="next"` pages that refuse
any parameter but `limit`) and as a generic endpoint (`/orders`:
`updated_since` or `cursor`, `limit`; `{"orders", "next_cursor"}`). Pages are
at most `page_size` orders whatever the client asks, as Shopify's own limit
is a ceiling. With a seed it misbehaves reproducibly: 429 with a
`Retry-After` in Shopify's fractional form, and slow pages.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

SHOPIFY_VERSION = "2024-10"
SHOP_TOKEN = "shpat_test_0123456789"
SHOP_ZONE = timezone(timedelta(hours=-5))
"""Shopify writes times in the shop's zone."""


def encode_token(fields: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def decode_token(text: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return result


class QuietServer(ThreadingHTTPServer):
    """Serves each request on a thread of its own, and says nothing of a client gone mid-answer (a puller
    killed on purpose)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet."""


class ChannelServer:
    """The orders of a test channel and the HTTP server that serves them."""

    def __init__(self, *, seed: int = 0, page_size: int = 4, throttle: float = 0.0, slow: float = 0.0) -> None:
        self.random = random.Random(seed)
        self.page_size = page_size
        self.throttle = throttle
        """Share of requests answered 429 with `Retry-After`."""
        self.slow = slow
        """Share of pages answered after a pause."""
        self.lock = threading.Lock()
        self.clock = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        self.shopify: dict[str, dict[str, Any]] = {}
        self.generic: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.throttled = 0
        server = QuietServer(("127.0.0.1", 0), self.handler())
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self) -> ChannelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tick(self) -> datetime:
        """The channel's clock, moved on by one second (two orders may share a second if not ticked)."""
        self.clock += timedelta(seconds=1)
        return self.clock

    def add_shopify(self, order: dict[str, Any]) -> None:
        with self.lock:
            order["updated_at"] = self.clock.astimezone(SHOP_ZONE).isoformat()
            self.shopify[str(order["id"])] = order

    def add_generic(self, order: dict[str, Any]) -> None:
        with self.lock:
            order["updated_at"] = self.clock.isoformat().replace("+00:00", "Z")
            self.generic[str(order["id"])] = order

    def cancel(self, kind: str, order_id: str) -> None:
        """Cancel an order in the channel (its `updated_at` moves on)."""
        with self.lock:
            moment = self.tick()
            if kind == "shopify":
                order = self.shopify[order_id]
                order.update(cancelled_at=moment.astimezone(SHOP_ZONE).isoformat(), financial_status="voided")
                order["updated_at"] = moment.astimezone(SHOP_ZONE).isoformat()
            else:
                order = self.generic[order_id]
                order.update(cancelled=True, updated_at=moment.isoformat().replace("+00:00", "Z"))

    # -- serving ----------------------------------------------------------------------

    def select(self, orders: dict[str, dict[str, Any]], since: str, after: list[Any] | None) -> list[dict[str, Any]]:
        """Orders updated at or after `since`, ordered by (updated_at, id), past `after`."""
        low = datetime.fromisoformat(since)
        rows = sorted(
            ((datetime.fromisoformat(o["updated_at"]), str(o["id"]), o) for o in orders.values()),
            key=lambda row: (row[0], row[1]),
        )
        picked = [row for row in rows if row[0] >= low]
        if after is not None:
            mark = (datetime.fromisoformat(after[0]), after[1])
            picked = [row for row in picked if (row[0], row[1]) > mark]
        return [json.loads(json.dumps(row[2])) for row in picked]

    def page(self, kind: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """Status, headers and body of one request."""
        if self.random.random() < self.throttle:
            self.throttled += 1
            return 429, {"Retry-After": f"{self.random.choice((0.2, 0.5, 1.0)):.1f}"}, {"errors": "Exceeded 2 calls"}
        if self.random.random() < self.slow:
            time.sleep(self.random.uniform(0.3, 1.2))
        limit = min(int(query.get("limit", "50")), self.page_size)
        if kind == "shopify":
            if "page_info" in query:
                if set(query) - {"page_info", "limit"}:
                    return 400, {}, {"errors": "page_info takes only limit and fields"}
                token = decode_token(query["page_info"])
                since, after = token["since"], token["after"]
            elif query.get("status") != "any" or query.get("order") != "updated_at asc":
                return 400, {}, {"errors": f"unexpected query {query}"}
            else:
                since, after = query["updated_at_min"], None
        else:
            if "cursor" in query:
                token = decode_token(query["cursor"])
                since, after = token["since"], token["after"]
            else:
                since, after = query["updated_since"], None
        with self.lock:
            rows = self.select(self.shopify if kind == "shopify" else self.generic, since, after)
        chosen, more = rows[:limit], len(rows) > limit
        last = [chosen[-1]["updated_at"], str(chosen[-1]["id"])] if chosen else after
        token_text = encode_token({"since": since, "after": last})
        if kind == "generic":
            return 200, {}, {"orders": chosen, "next_cursor": token_text if more else None}
        headers = {}
        if more:
            query_text = urlencode({"limit": limit, "page_info": token_text})
            link = f"{self.url}/admin/api/{SHOPIFY_VERSION}/orders.json?{query_text}"
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, headers, {"orders": chosen}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        channel = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                channel.requests.append(self.path)
                if parts.path == f"/admin/api/{SHOPIFY_VERSION}/orders.json":
                    if self.headers.get("X-Shopify-Access-Token") != SHOP_TOKEN:
                        self.answer(401, {}, {"errors": "[API] Invalid API key or access token"})
                        return
                    self.answer(*channel.page("shopify", query))
                elif parts.path == "/orders":
                    self.answer(*channel.page("generic", query))
                else:
                    self.answer(404, {}, {"errors": "Not Found"})

            def answer(self, status: int, headers: dict[str, str], body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def shopify_order(
    order_id: int,
    lines: list[tuple[str, int, str]],
    *,
    currency: str | None = "EUR",
    paid: bool = True,
    customer: int | None = 7001,
    taxes_included: bool = True,
    shipping: str = "0.00",
    **extra: Any,
) -> dict[str, Any]:
    """An order as Shopify's Admin REST API sends it (the fields the adapter reads, and a few it does not)."""
    order: dict[str, Any] = {
        "id": order_id,
        "name": f"#{order_id % 100000}",
        "email": "alice@example.com",
        "currency": currency,
        "financial_status": "paid" if paid else "pending",
        "cancelled_at": None,
        "updated_at": "2026-12-01T10:00:00-05:00",
        "taxes_included": taxes_included,
        "total_tax": "0.00",
        "line_items": [
            {
                "id": order_id * 10 + i,
                "sku": sku,
                "quantity": qty,
                "price": price,
                "total_discount": "0.00",
                "tax_lines": [],
                "title": sku,
            }
            for i, (sku, qty, price) in enumerate(lines)
        ],
        "shipping_lines": [{"price": shipping, "discounted_price": shipping, "tax_lines": []}],
        "customer": None if customer is None else {"id": customer, "email": "alice@example.com"},
        "shipping_address": {"province_code": "LIS", "country_code": "PT", "latitude": 38.7223, "longitude": -9.1393},
    }
    order.update(extra)
    return order


def generic_order(
    order_id: str, lines: list[tuple[str, int, str]], *, currency: str | None = "EUR", paid: bool = False, **extra: Any
) -> dict[str, Any]:
    """An order in the generic format (`channels.generic`)."""
    order: dict[str, Any] = {
        "id": order_id,
        "currency": currency,
        "customer_ref": f"c-{order_id}",
        "lines": [{"sku": sku, "qty": qty, "price": price} for sku, qty, price in lines],
        "delivery": {"region": "MAD", "lat": "40.4168", "lon": "-3.7038"},
        "paid": paid,
        "updated_at": "2026-12-01T15:00:00Z",
    }
    order.update(extra)
    return order
