"""Routes for the node's own operator: the API explorer without internet access, and the backup stream."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from fastapi.testclient import TestClient

from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from node.api.app import create_app
from node.backup import sign_backup_request
from node.config import CLIENTS_DIR, GENESIS_FILE, KEY_FILE
from node.home import create_network


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    create_network([home], [0], home / CLIENTS_DIR)
    return home


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(home)) as test_client:
        yield test_client


def test_the_api_explorer_loads_everything_from_the_node(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"url: *'([^']+)'", html)
        assert assets, html
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            assert client.get(asset).status_code == 200, asset


def test_the_backup_stream_is_only_for_the_holder_of_the_node_key(client: TestClient, home: Path) -> None:
    genesis = Genesis.load(home / GENESIS_FILE)
    client.app.state.node.store.raw_db().put(b"zz/test", b"value")  # type: ignore[attr-defined]
    now = int(time.time() * 1000)
    body = sign_backup_request(PrivateKey.load(home / KEY_FILE), genesis.chain_id, "node-0", now)
    response = client.post("/v1/admin/backup", json=body)
    assert response.status_code == 200
    unpacker = msgpack.Unpacker(raw=True)
    unpacker.feed(response.content)
    pairs = list(unpacker)
    assert [b"zz/test", b"value"] in pairs and all(isinstance(pair, list) and len(pair) == 2 for pair in pairs)
    forged = sign_backup_request(PrivateKey.generate(), genesis.chain_id, "node-0", now)
    assert client.post("/v1/admin/backup", json=forged).status_code == 403
    stale = sign_backup_request(PrivateKey.load(home / KEY_FILE), genesis.chain_id, "node-0", now - 3_600_000)
    assert client.post("/v1/admin/backup", json=stale).status_code == 403
    assert client.post("/v1/admin/backup", json={"time_ms": "x"}).status_code in (400, 422)
