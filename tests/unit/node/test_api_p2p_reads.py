"""Every read under `/p2p` answers member nodes only: a validator, or an organisation's node listed with the role
`node`; anyone else gets 401 or 403 and not a byte of the chain, whichever route and parameters it tries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ledger.genesis import Identity
from ledger.keys import PrivateKey
from node.api import p2p
from node.api.app import create_app
from node.config import KEY_FILE
from node.forming import build_genesis, install_genesis, make_identity
from p2p.envelope import Sealer
from p2p.reads import ReadSealer
from p2p.sync import decode_blocks, decode_status

NODE = "node-0"


class Net:
    """One validator's node served in-process, and the keys of everyone who knocks."""

    def __init__(self, root: Path) -> None:
        identity = make_identity(root / "node", "org-0", NODE, "127.0.0.1:27991")
        self.follower = PrivateKey.generate()
        self.operator = PrivateKey.generate()
        clients = (
            Identity("org-0-till", "org-0", self.follower.public, frozenset({"node"})),
            Identity("ops", "org-0", self.operator.public, frozenset({"operator", "auditor"})),
        )
        self.genesis = build_genesis("reads-net", [identity], clients)
        install_genesis(root / "node", self.genesis)
        self.validator = PrivateKey.load(root / "node" / KEY_FILE)
        self.app = create_app(root / "node")

    def seal(self, who: str, key: PrivateKey, path: str, params: dict[str, Any] | None = None) -> dict[str, str]:
        reader = ReadSealer(Sealer(key, who, self.genesis.chain_id), _now_ms)
        return reader.headers(NODE, path, params)


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Net, TestClient]]:
    network = Net(tmp_path_factory.mktemp("reads"))
    with TestClient(network.app, raise_server_exceptions=False) as http:
        yield network, http


def p2p_reads(net: Net) -> list[tuple[str, dict[str, Any]]]:
    """Every GET route under /p2p, with parameters that would be served."""
    params = {"/p2p/blocks": {"from": 1, "to": 5}}
    paths = sorted(
        route.path.replace("{index}", "0")
        for route in p2p.router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    )
    return [(path, params.get(path, {})) for path in paths]


def test_the_read_routes_are_those_sync_and_address_gossip_fetch(net: tuple[Net, TestClient]):
    paths = [path for path, _ in p2p_reads(net[0])]
    assert paths == ["/p2p/addresses", "/p2p/blocks", "/p2p/snapshot", "/p2p/snapshot/0", "/p2p/status"]


def test_without_a_seal_every_read_is_401_with_the_error_body_only(net: tuple[Net, TestClient]):
    network, http = net
    for path, params in p2p_reads(network):
        answer = http.get(path, params=params)
        assert answer.status_code == 401, (path, answer.text)
        assert set(answer.json()) == {"error", "message"} and answer.json()["error"] == "unauthorized"


def test_a_stranger_and_a_client_without_the_node_role_are_forbidden(net: tuple[Net, TestClient]):
    network, http = net
    for path, params in p2p_reads(network):
        for who, key in (("stranger", PrivateKey.generate()), ("ops", network.operator)):
            answer = http.get(path, params=params, headers=network.seal(who, key, path, params))
            assert answer.status_code == 403, (who, path, answer.text)
            assert answer.json()["error"] == "forbidden"


def test_a_key_that_is_not_the_members_is_unauthenticated(net: tuple[Net, TestClient]):
    network, http = net
    for path, params in p2p_reads(network):
        answer = http.get(path, params=params, headers=network.seal("org-0-till", PrivateKey.generate(), path, params))
        assert answer.status_code == 401, (path, answer.text)


def test_a_sealed_read_replayed_or_moved_to_another_request_is_refused(net: tuple[Net, TestClient]):
    network, http = net
    headers = network.seal(NODE, network.validator, "/p2p/blocks", {"from": 1, "to": 1})
    assert http.get("/p2p/blocks", params={"from": 1, "to": 1}, headers=headers).status_code == 200
    assert http.get("/p2p/blocks", params={"from": 1, "to": 1}, headers=headers).status_code == 401
    moved = network.seal(NODE, network.validator, "/p2p/blocks", {"from": 1, "to": 1})
    assert http.get("/p2p/blocks", params={"from": 1, "to": 9}, headers=moved).status_code == 401


def test_the_validator_and_the_listed_follower_read(net: tuple[Net, TestClient]):
    network, http = net
    for who, key in ((NODE, network.validator), ("org-0-till", network.follower)):
        status = http.get("/p2p/status", headers=network.seal(who, key, "/p2p/status"))
        assert status.status_code == 200 and decode_status(status.content) >= 0
        params = {"from": 1, "to": 5}
        blocks = http.get("/p2p/blocks", params=params, headers=network.seal(who, key, "/p2p/blocks", params))
        assert blocks.status_code == 200 and isinstance(decode_blocks(blocks.content), list)
