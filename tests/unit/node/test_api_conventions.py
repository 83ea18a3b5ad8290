"""What every route of a node's API does alike: JSON bodies whatever their declared type, 422 with each field for
a request that does not fit, times as milliseconds or ISO 8601, a request id and the rate on every answer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devnet.network import free_ports
from ledger.genesis import Genesis
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE
from node.home import create_network
from node.tokens import SCOPES, TokenStore
from tests.helpers.api import bearer, make_token


@dataclass
class Api:
    http: TestClient
    operator: dict[str, str]
    """Headers of an operator's token with every scope."""
    home: Path


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = Path(tmp_path_factory.mktemp("conventions"))
    home = root / "node"
    create_network([home], free_ports(1), root / "clients")
    shutil.copytree(root / "clients", home / CLIENTS_DIR)
    with TestClient(create_app(home), raise_server_exceptions=False) as http:
        yield Api(http, bearer(make_token(home)), home)


RECEIPT = {"location": "LIS-1", "lines": [{"sku": "TEE", "qty": 1}]}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"]
)
def test_a_json_body_is_read_whatever_its_declared_type(api: Api, content_type: str | None) -> None:
    headers = api.operator | ({"content-type": content_type} if content_type else {})
    answer = api.http.post("/v1/inventory/receipts", content=b'{"location": "LIS-1", "lines": []}', headers=headers)
    assert answer.status_code == 422 and answer.json()["fields"][0]["path"] == "body.lines", answer.text
    sent = api.http.post("/v1/inventory/receipts", content=json.dumps(RECEIPT).encode(), headers=headers)
    assert sent.status_code == 202, sent.text


def test_a_body_that_is_not_json_is_a_422_naming_the_body(api: Api) -> None:
    answer = api.http.post("/v1/inventory/receipts", content=b"location=LIS-1", headers=api.operator)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request" and answer.json()["fields"][0]["path"].startswith("body")


def test_unknown_query_parameters_and_enum_values_are_422_with_each_field(api: Api) -> None:
    typo = api.http.get("/v1/orders", params={"stauts": "created", "colour": "red"}, headers=api.operator)
    assert typo.status_code == 422
    assert [f["path"] for f in typo.json()["fields"]] == ["query.colour", "query.stauts"]
    for path, params in (
        ("/v1/orders", {"status": "bogus"}),
        ("/v1/returns", {"status": "bogus"}),
        ("/v1/journal", {"kind": "bogus"}),
        ("/v1/locations", {"type": "bogus"}),
    ):
        bogus = api.http.get(path, params=params, headers=api.operator)
        assert bogus.status_code == 422, (path, bogus.text)
        assert set(bogus.json()) == {"error", "message", "fields"}
        assert [f["path"] for f in bogus.json()["fields"]] == [f"query.{next(iter(params))}"]
    assert api.http.get("/v1/orders", params={"status": "created"}, headers=api.operator).status_code == 200


@pytest.mark.parametrize("moment", ["1767225600000", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T01:00+01:00"])
def test_times_in_filters_are_milliseconds_or_iso_8601(api: Api, moment: str) -> None:
    answer = api.http.get("/v1/orders", params={"created_min": moment, "updated_max": moment}, headers=api.operator)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("moment", ["yesterday", "2026-13-01", "-5", "1e3"])
def test_a_time_that_is_neither_is_422(api: Api, moment: str) -> None:
    answer = api.http.get("/v1/orders", params={"created_min": moment}, headers=api.operator)
    assert answer.status_code == 422 and answer.json()["fields"][0]["path"] == "query.created_min", answer.text


def test_every_answer_carries_a_request_id_echoing_a_sane_one(api: Api) -> None:
    for path, headers in (("/health", {}), ("/v1/orders", api.operator), ("/v1/nowhere", {}), ("/v1/orders", {})):
        answer = api.http.get(path, headers=headers)
        assert len(answer.headers["x-request-id"]) == 32, path
    assert api.http.get("/health", headers={"x-request-id": "till-7:42"}).headers["x-request-id"] == "till-7:42"
    for insane in ("two words", "x" * 129, "<script>"):
        answer = api.http.get("/health", headers={"x-request-id": insane})
        assert answer.headers["x-request-id"] != insane
    too_large = api.http.post("/v1/tx", content=b"x", headers={"content-length": str(1 << 30)})
    assert too_large.status_code == 413 and "x-request-id" in too_large.headers


def test_answers_announce_the_rate_and_a_429_says_when_to_retry(api: Api) -> None:
    token = TokenStore(api.home).create(
        Genesis.load(api.home / GENESIS_FILE), "auditor-1", SCOPES, "slow", rate_per_s=1
    )
    first = api.http.get("/v1/orders", headers=bearer(token))
    assert first.status_code == 200
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("2", "1")
    assert int(first.headers["ratelimit-reset"]) >= 1
    second = api.http.get("/v1/orders", headers=bearer(token))
    assert second.headers["ratelimit-remaining"] == "0"
    refused = api.http.get("/v1/orders", headers=bearer(token))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0" and refused.headers["ratelimit-limit"] == "2"
    assert "ratelimit-limit" not in api.http.get("/health").headers
