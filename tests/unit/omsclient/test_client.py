"""`omsclient.Client`'s retries, against a real HTTP server on localhost that answers from a script.

Each test scripts the answers (status, headers, body) of a small threaded
HTTP server and then checks both what the client returned or raised and
what the server saw: how many requests, with which method, query, headers
and body. So a retry that would act twice (a POST without an idempotency
key sent again) is caught by the count, not by trusting the client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devnet.network import free_ports
from ledger.encoding import decode
from omsclient import Client, NodeError, Signer, tx_id
from omsclient.client import MAX_RETRY_AFTER_S, parse_retry_after


@dataclass(frozen=True)
class Answer:
    """One scripted answer."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """A real HTTP server answering each request with the next scripted answer (the last one again at the end)."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                url = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.seen.append(Seen(self.command, url.path, parse_qs(url.query), headers, self.rfile.read(length)))
                scripted = server.script[min(len(server.seen), len(server.script)) - 1]
                data = b"" if scripted.body is None else json.dumps(scripted.body).encode()
                self.send_response(scripted.status)
                for name, value in {"content-type": "application/json", **scripted.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *script: Answer) -> None:
        self.script = list(script)
        self.seen = []

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[Client]:
    with Client(server.url, "tok", timeout=5.0, retries=3) as made:
        yield made


BUSY = Answer(503, {"error": "mempool_full", "message": "full"}, {"retry-after": "0"})
SLOW_DOWN = Answer(429, {"error": "rate_limited", "message": "slow down"}, {"retry-after": "1"})
OK = Answer(200, {"ok": True})


def test_a_get_waits_out_429_and_503_as_retry_after_says_then_succeeds(server: ScriptedServer, client: Client) -> None:
    server.answer(SLOW_DOWN, BUSY, OK)
    started = time.monotonic()
    assert client.get("/v1/things", status="open", missing=None) == {"ok": True}
    assert time.monotonic() - started >= 0.9, "the 429's Retry-After of 1 s was waited out"
    assert [s.method for s in server.seen] == ["GET"] * 3
    assert all(s.query == {"status": ["open"]} for s in server.seen), "None parameters are left out"
    assert all(s.headers["authorization"] == "Bearer tok" for s in server.seen)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_write_without_idempotency_key_is_never_sent_twice(
    server: ScriptedServer, client: Client, method: str
) -> None:
    server.answer(BUSY, OK)
    with pytest.raises(NodeError) as refused:
        client.request(method, "/v1/orders", json={"external_ref": "A"})
    assert refused.value.status == 503 and refused.value.code == "mempool_full"
    assert [s.method for s in server.seen] == [method]


def test_a_post_with_idempotency_key_is_sent_again_with_the_same_key_and_body(
    server: ScriptedServer, client: Client
) -> None:
    server.answer(BUSY, Answer(500, {"error": "internal_error", "message": "oops"}), OK)
    assert client.post("/v1/orders", {"external_ref": "A"}, idempotency_key="order-A", wait="commit") == {"ok": True}
    assert len(server.seen) == 3
    assert {s.headers["idempotency-key"] for s in server.seen} == {"order-A"}
    assert {s.body for s in server.seen} == {b'{"external_ref":"A"}'}
    assert all(s.query == {"wait": ["commit"]} for s in server.seen)


def test_an_error_answer_raises_node_error_with_the_body_and_is_not_retried(
    server: ScriptedServer, client: Client
) -> None:
    body = {"error": "idempotency_conflict", "message": "Idempotency-Key 'k' was used with another request"}
    server.answer(Answer(409, body))
    with pytest.raises(NodeError) as refused:
        client.post("/v1/orders", {}, idempotency_key="k")
    error = refused.value
    assert (error.status, error.code, error.message, error.body) == (409, "idempotency_conflict", body["message"], body)
    assert len(server.seen) == 1


def test_retries_end_after_the_given_number(server: ScriptedServer, client: Client) -> None:
    server.answer(BUSY)
    with pytest.raises(NodeError) as refused:
        client.get("/v1/status")
    assert refused.value.status == 503
    assert len(server.seen) == 1 + client.retries


def test_a_connection_failure_is_retried_then_raised() -> None:
    (port,) = free_ports(1)
    with Client(f"http://127.0.0.1:{port}", retries=1) as nowhere, pytest.raises(httpx.ConnectError):
        nowhere.get("/v1/status")


def test_retry_after_is_read_as_seconds_or_a_date_and_capped() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("99999") == MAX_RETRY_AFTER_S
    assert parse_retry_after("-5") == 0.0
    assert 8 <= (parse_retry_after(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10
    assert parse_retry_after("soon") is None and parse_retry_after("nan") is None and parse_retry_after(None) is None


def test_pages_follow_next_cursor_until_null(server: ScriptedServer, client: Client) -> None:
    server.answer(
        Answer(200, {"items": [1, 2], "next_cursor": "c1"}),
        Answer(200, {"items": [], "next_cursor": "c2"}),
        Answer(200, {"items": [3], "next_cursor": None}),
    )
    assert list(client.pages("/v1/orders", limit=2)) == [1, 2, 3]
    assert [s.query for s in server.seen] == [
        {"limit": ["2"]},
        {"limit": ["2"], "cursor": ["c1"]},
        {"limit": ["2"], "cursor": ["c2"]},
    ]


def test_follow_long_polls_from_each_next_cursor(server: ScriptedServer, client: Client) -> None:
    first = {"cursor": "5", "type": "order.status"}
    server.answer(
        Answer(200, {"items": [first], "next_cursor": "7"}),
        Answer(200, {"items": [], "next_cursor": "7"}),
        Answer(200, {"items": [{"cursor": "9", "type": "order.status"}], "next_cursor": "9"}),
    )
    feed = client.follow(after=0, types=["order.status", "stock.movement"], wait=1)
    assert [next(feed)["cursor"], next(feed)["cursor"]] == ["5", "9"]
    assert [s.query["after"] for s in server.seen] == [["0"], ["7"], ["7"]]
    assert server.seen[0].query["types"] == ["order.status,stock.movement"]
    assert server.seen[0].query["wait"] == ["1"]


def signed() -> dict[str, Any]:
    signer = Signer("channel-1", bytes(range(32)))
    return signer.sign("order.cancel", {"order_id": "O-1"}, chain_id="c", valid_until=10, nonce=1)


def test_submit_sends_a_signed_tx_again_and_takes_an_already_committed_one(
    server: ScriptedServer, client: Client
) -> None:
    tx = signed()
    duplicate = Answer(400, {"error": "duplicate_transaction", "message": "already committed"})
    server.answer(Answer(503, {"error": "mempool_full", "message": "full"}, {"retry-after": "0"}), duplicate)
    assert client.submit(tx) == tx_id(tx)
    assert len(server.seen) == 2 and json.loads(server.seen[1].body) == tx


def test_submit_many_sends_again_only_the_txs_refused_for_room(server: ScriptedServer, client: Client) -> None:
    txs = [signed(), {**signed(), "nonce": 2}]
    ids = [tx_id(tx) for tx in txs]
    accepted = {"accepted": True, "error": None, "message": None}
    server.answer(
        Answer(
            202,
            [{"tx_id": ids[0], **accepted}, {"tx_id": ids[1], "accepted": False, "error": "mempool_full"}],
            {"retry-after": "0"},
        ),
        Answer(202, [{"tx_id": ids[1], **accepted}]),
    )
    assert [v["accepted"] for v in client.submit_many(txs)] == [True, True]
    first, again = (decode(s.body) for s in server.seen)
    assert server.seen[0].headers["content-type"] == "application/msgpack"
    assert [t["nonce"] for t in first] == [1, 2] and [t["nonce"] for t in again] == [2]
    assert again[0]["signature"] == bytes.fromhex(txs[1]["signature"])
