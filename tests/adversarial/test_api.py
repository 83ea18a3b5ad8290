"""What one client can send to the HTTP API: every bad input gets a 4xx with the JSON error body, the same
rules hold for JSON and msgpack, no body is read past its limit, a signer over its mempool quota is told when
to retry, and an address pays for at most a budget of failed signature checks.

One real node (a single validator, so it commits on its own) runs inside the test client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from fastapi.testclient import TestClient

from ledger import tx as tx_module
from ledger.keys import PrivateKey
from ledger.tx import MAX_TX_DEPTH, MAX_TX_WINDOW, Tx, make_tx
from node.api import txs as txs_module
from node.api.app import create_app
from node.api.errors import TooManyTxs, error_response
from node.api.limits import MAX_BODY_BYTES
from node.api.txs import MAX_BATCH
from node.config import KEY_FILE, NodeConfig
from node.home import create_network
from node.mempool import RETRY_AFTER_S, MempoolFull, SignerOverQuota
from p2p.envelope import Sealer
from p2p.inbox import SourceBudget
from p2p.reads import ReadSealer
from tests.adversarial.hostile import deep_array
from tests.helpers.api import bearer, make_token


class Client:
    """A test client of the node, with the channel's key to sign txs."""

    def __init__(self, http: TestClient, chain_id: str, key: PrivateKey, node_key: PrivateKey) -> None:
        self.http = http
        self.chain_id = chain_id
        self.key = key
        self.node_key = node_key
        """The node's own key: what seals its reads of `/p2p`."""
        self.nonce = 0

    def tx(self, payload: dict[str, Any] | None = None) -> Tx:
        self.nonce += 1
        return make_tx(
            self.chain_id,
            "order.create",
            "channel-1",
            self.nonce,
            payload or make_order(self.nonce),
            self.key,
            valid_until=MAX_TX_WINDOW,
        )


def make_order(n: int) -> dict[str, Any]:
    """An `order.create` payload that fits the kind's spec (admission refuses one that does not)."""
    return {"external_ref": f"r{n}", "customer_hash": "0" * 64, "currency": "EUR", "lines": [{"sku": "S", "qty": 1}]}


def as_json(tx: Tx) -> dict[str, Any]:
    return {**tx.to_wire(), "signature": tx.signature.hex()}


def as_msgpack(items: list[dict[str, Any]]) -> bytes:
    return msgpack.packb(items, use_bin_type=True)


@contextmanager
def node_client(root: Path, **settings: Any) -> Iterator[Client]:
    """A single-validator node in `root` (with `settings` in its config.toml) and a client of it."""
    genesis = create_network([root / "node"], [27990], root / "clients")
    replace(NodeConfig.load(root / "node"), **settings).save(root / "node")
    key = PrivateKey.load(root / "clients" / "channel-1.key")
    app = create_app(root / "node")
    with TestClient(app, raise_server_exceptions=False, headers=bearer(make_token(root / "node"))) as http:
        yield Client(http, genesis.chain_id, key, PrivateKey.load(root / "node" / KEY_FILE))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A node shared by the module's tests, whose address rate does not bind (its tests send large junk bodies;
    the rate has a test of its own)."""
    with node_client(Path(tmp_path_factory.mktemp("api")), api_address_rate_per_s=10**9) as one:
        yield one


def assert_refused(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ({"error", "message", "fields"} if status == 422 else {"error", "message"}), body
    if code is not None:
        assert body["error"] == code, body
    return body


def post_json(client: Client, path: str, text: str) -> httpx.Response:
    return client.http.post(path, content=text.encode(), headers={"content-type": "application/json"})


MSGPACK = {"content-type": "application/msgpack"}


@pytest.mark.parametrize("nonce", ["5", 5.0, True, None, [5]])
def test_a_json_nonce_is_an_integer_never_coerced(client: Client, nonce: Any) -> None:
    wire = {**as_json(client.tx()), "nonce": nonce}
    assert_refused(client.http.post("/v1/tx", json=wire), 422, "invalid_request")
    assert_refused(client.http.post("/v1/txs", json=[wire]), 422, "invalid_request")


@pytest.mark.parametrize("nonce", ["5", 5.0, True, None])
def test_a_msgpack_nonce_is_an_integer_never_coerced(client: Client, nonce: Any) -> None:
    wire = {**client.tx().to_wire(), "nonce": nonce}
    assert_refused(client.http.post("/v1/txs", content=as_msgpack([wire]), headers=MSGPACK), 400)


def test_extra_top_level_fields_are_refused_on_every_route_and_encoding(client: Client) -> None:
    tx = client.tx()
    assert_refused(client.http.post("/v1/tx", json={**as_json(tx), "extra": 1}), 422, "invalid_request")
    assert_refused(client.http.post("/v1/txs", json=[{**as_json(tx), "extra": 1}]), 422, "invalid_request")
    body = as_msgpack([{**tx.to_wire(), "extra": 1}])
    assert_refused(client.http.post("/v1/txs", content=body, headers=MSGPACK), 400, "invalid_transaction")


@pytest.mark.parametrize("field", ["kind", "signer", "chain_id", "payload"])
def test_a_lone_surrogate_in_any_string_is_a_400(client: Client, field: str) -> None:
    wire = as_json(client.tx())
    wire[field] = {"note": "\ud800"} if field == "payload" else "\ud800"
    text = json.dumps(wire)
    assert_refused(post_json(client, "/v1/tx", text), 400)
    assert_refused(post_json(client, "/v1/txs", f"[{text}]"), 400)


@pytest.mark.parametrize("levels", [40, 900, 100_000])
def test_json_nested_past_any_bound_is_refused(client: Client, levels: int) -> None:
    deep = "[" * levels + "]" * levels
    wire = json.dumps({**as_json(client.tx()), "payload": {"deep": "X"}}).replace('"X"', deep)
    for path, body in (("/v1/tx", wire), ("/v1/txs", f"[{wire}]"), ("/v1/txs", deep)):
        answer = post_json(client, path, body)
        code = {400: "invalid_transaction", 422: "invalid_request"}.get(answer.status_code)
        assert code is not None, answer.text
        assert_refused(answer, answer.status_code, code)


def test_msgpack_nested_past_any_bound_is_a_400(client: Client) -> None:
    assert_refused(client.http.post("/v1/txs", content=deep_array(100_000), headers=MSGPACK), 400)
    assert_refused(client.http.post("/v1/txs", content=b"\x91" + deep_array(600), headers=MSGPACK), 400)


@pytest.mark.parametrize("path", ["/v1/blocks/0", "/v1/blocks/-1", f"/v1/blocks/{2**63}", f"/v1/blocks/{2**70}"])
def test_a_height_out_of_range_is_a_422(client: Client, path: str) -> None:
    assert_refused(client.http.get(path), 422, "invalid_request")


@pytest.mark.parametrize("query", [f"from={2**64}&to={2**64}", "from=-1&to=3", "from=1&to=x"])
def test_a_sync_range_out_of_range_is_a_422_to_a_member_and_a_401_to_anyone_else(client: Client, query: str) -> None:
    assert_refused(client.http.get(f"/p2p/blocks?{query}"), 401, "unauthorized")
    params = dict(part.split("=") for part in query.split("&"))
    sealer = ReadSealer(Sealer(client.node_key, "node-0", client.chain_id), lambda: int(time.time() * 1000))
    sealed = sealer.headers("node-0", "/p2p/blocks", params)
    assert_refused(client.http.get(f"/p2p/blocks?{query}", headers=sealed), 422, "invalid_request")


def test_unknown_routes_and_methods_answer_the_error_body(client: Client) -> None:
    assert_refused(client.http.get("/v1/nothing"), 404, "not_found")
    assert_refused(client.http.delete("/v1/tx"), 405, "method_not_allowed")


def test_a_batch_over_the_limit_is_refused_from_its_array_header(client: Client) -> None:
    header = msgpack.Packer().pack_array_header(MAX_BATCH + 1)
    assert_refused(client.http.post("/v1/txs", content=header + b"\xc0", headers=MSGPACK), 422, "too_many_txs")
    text = "[" + ",".join(["{}"] * (MAX_BATCH + 1)) + "]"
    assert_refused(post_json(client, "/v1/txs", text), 422, "too_many_txs")


def test_a_declared_body_over_the_limit_is_refused_unread(client: Client) -> None:
    response = client.http.post("/v1/txs", content=b" " * (MAX_BODY_BYTES + 1), headers=MSGPACK)
    assert_refused(response, 413, "body_too_large")


def test_a_streamed_body_over_the_limit_is_cut_off(client: Client) -> None:
    def chunks() -> Iterator[bytes]:
        chunk = b" " * (1024 * 1024)
        for _ in range(MAX_BODY_BYTES // len(chunk) + 1):
            yield chunk

    assert_refused(client.http.post("/v1/tx", content=chunks(), headers=MSGPACK), 413, "body_too_large")


def test_a_copy_of_an_admitted_tx_with_broken_signature_is_refused(client: Client) -> None:
    tx = client.tx()
    assert client.http.post("/v1/tx", json=as_json(tx)).status_code == 202
    broken = {**as_json(tx), "signature": bytes(64).hex()}
    refused = client.http.post("/v1/tx", json=broken)
    assert refused.status_code == 400 and refused.json()["error"] in ("invalid_signature", "duplicate_transaction")
    body = as_msgpack([{**tx.to_wire(), "signature": tx.signature[::-1]}])
    verdicts = client.http.post("/v1/txs", content=body, headers=MSGPACK).json()
    # The genuine tx may have committed by now: a copy of a committed tx is refused as a duplicate before any
    # signature check (replays cost no verification); while it waits in the mempool the copy's signature is checked
    # (tests/unit/node/test_admission.py shows that deterministically).
    assert verdicts[0]["error"] in ("invalid_signature", "duplicate_transaction")


def test_a_payload_at_the_tx_depth_bound_is_decoded_and_one_deeper_is_refused(client: Client) -> None:
    value: Any = 0
    for _ in range(MAX_TX_DEPTH - 2):
        value = [value]
    # decoded, then refused by the kind's spec (no field `deep`), not by the decoder's bound
    assert_refused(client.http.post("/v1/tx", json=as_json(client.tx({"deep": value}))), 400, "bad_payload")
    deeper = {**as_json(client.tx()), "payload": {"deep": [value]}}
    assert_refused(client.http.post("/v1/tx", json=deeper), 400, "invalid_transaction")


@pytest.fixture
def fresh_client(tmp_path: Path) -> Iterator[Client]:
    """A node of its own whose mempool takes at most 2 txs of one signer at once."""
    with node_client(tmp_path, mempool_signer_max_txs=2) as one:
        yield one


def test_a_signer_over_its_mempool_quota_is_told_to_retry_later_before_its_signature_is_checked(
    fresh_client: Client, signature_checks: list[int]
) -> None:
    batch = [fresh_client.tx() for _ in range(5)]
    response = fresh_client.http.post("/v1/txs", content=as_msgpack([tx.to_wire() for tx in batch]), headers=MSGPACK)
    assert response.status_code == 202 and response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert [verdict["error"] for verdict in response.json()] == [None, None] + ["signer_over_quota"] * 3
    assert len(signature_checks) == 2, "a tx refused for room costs no signature check"


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_a_batch_of_5000_signed_txs_is_refused_by_count_before_any_is_decoded_or_checked(
    fresh_client: Client, signature_checks: list[int], encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tx = fresh_client.tx()
    decoded: list[int] = []
    monkeypatch.setattr(txs_module, "tx_from_wire", lambda wire: decoded.append(1))
    if encoding == "json":
        response = post_json(fresh_client, "/v1/txs", json.dumps([as_json(tx)] * 5000))
    else:
        response = fresh_client.http.post("/v1/txs", content=as_msgpack([tx.to_wire()] * 5000), headers=MSGPACK)
    assert_refused(response, TooManyTxs.http_status, "too_many_txs")
    assert decoded == [] and signature_checks == []


def test_a_refusal_for_room_answers_its_status_with_retry_after() -> None:
    for refusal, status in ((SignerOverQuota("at quota"), 429), (MempoolFull("full"), 503)):
        response = error_response(refusal)
        assert (response.status_code, response.headers["retry-after"]) == (status, str(RETRY_AFTER_S))


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts tx signature checks."""
    calls: list[int] = []
    real = tx_module.verify

    def counting(public_key: bytes, message: bytes, signature: bytes) -> None:
        calls.append(1)
        real(public_key, message, signature)

    monkeypatch.setattr(tx_module, "verify", counting)
    return calls


def test_an_address_spends_its_failed_signature_checks_then_is_refused_unchecked(
    fresh_client: Client, signature_checks: list[int]
) -> None:
    frozen = SourceBudget(clock=lambda: 0.0)
    fresh_client.http.app.state.node.admission.budget = frozen  # type: ignore[attr-defined]
    forged = [{**fresh_client.tx().to_wire(), "signature": bytes(64)} for _ in range(200)]
    response = fresh_client.http.post("/v1/txs", content=as_msgpack(forged), headers=MSGPACK)
    errors = [verdict["error"] for verdict in response.json()]
    budget = int(frozen.capacity)
    assert errors == ["invalid_signature"] * budget + ["signature_checks_exhausted"] * (200 - budget)
    assert len(signature_checks) == budget, "a spent address costs no signature check"
    assert response.headers["retry-after"] == "1"
    refused = fresh_client.http.post("/v1/tx", json=as_json(fresh_client.tx()))
    assert_refused(refused, 429, "signature_checks_exhausted")
    assert refused.headers["retry-after"] == "1"


def test_an_address_pays_for_the_signatures_it_made_the_node_check(tmp_path: Path) -> None:
    with node_client(tmp_path, api_address_rate_per_s=10) as one:
        batch = [one.tx() for _ in range(30)]  # 1 + 30 checked + 4 for 4.5 KB: a debt of 15 units
        response = one.http.post("/v1/txs", content=as_msgpack([tx.to_wire() for tx in batch]), headers=MSGPACK)
        assert response.status_code == 202 and all(verdict["accepted"] for verdict in response.json())
        refused = one.http.post("/v1/tx", json=as_json(one.tx()))
        body = assert_refused(refused, 429, "rate_limited")
        assert "address" in body["message"] and int(refused.headers["retry-after"]) >= 1
        again = one.http.post("/v1/txs", content=as_msgpack([batch[0].to_wire()]), headers=MSGPACK)
        assert_refused(again, 429, "rate_limited")
        assert one.http.get("/v1/status").status_code == 200, "reads that cost no work stay open"
