"""A webhook receiver for tests: a real HTTP server that records what it is sent, and fails or stalls at times.

Each request is answered by a seeded plan: with `fail_rate` a 500, with `slow_rate` a 200 after `slow_s`
(longer than the sender's timeout, so the sender counts it as failed though the receiver took the event),
else a 200 at once. Every request answered 200 is recorded, as a receiver that acts on what it takes would:
slow ones too, so a delivery may be recorded twice, and `unique` keeps the first of each `X-OMS-Delivery`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request the receiver took."""

    delivery: str
    """`X-OMS-Delivery`."""
    event: str
    """`X-OMS-Event`."""
    signature: str
    """`X-OMS-Signature`."""
    body: bytes
    """The raw body."""


@dataclass
class Plan:
    """How the receiver answers (its fields may be changed while it runs)."""

    fail_rate: float = 0.0
    """Share of requests answered 500 at once."""
    slow_rate: float = 0.0
    """Share of requests answered 200 after `slow_s`."""
    slow_s: float = 0.0
    seed: int = 0
    """Seed of the draws, so a failing run can be repeated."""
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class Receiver:
    """A running receiver on a free port of localhost."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.received: list[Received] = []
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) != length:  # the sender went away mid-request (a node killed): nothing was sent
                    return
                with receiver.lock:
                    receiver.requests += 1
                    roll = receiver.plan.rng.random()
                plan = receiver.plan
                if roll < plan.fail_rate:
                    self._answer(500, b"receiver down")
                    return
                if roll < plan.fail_rate + plan.slow_rate:
                    time.sleep(plan.slow_s)
                record = Received(
                    self.headers["x-oms-delivery"], self.headers["x-oms-event"], self.headers["x-oms-signature"], body
                )
                with receiver.lock:
                    receiver.received.append(record)
                self._answer(200, b"ok")

            def _answer(self, status: int, text: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def unique(self) -> dict[str, Received]:
        """The first record of each delivery id."""
        with self.lock:
            records = list(self.received)
        first: dict[str, Received] = {}
        for record in records:
            first.setdefault(record.delivery, record)
        return first


def is_valid_signature(secret: str, header: str, body: bytes) -> bool:
    """Check `X-OMS-Signature` as a receiver would: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])
