"""Forming a network from organisations' identities: identity files, the genesis, and the node's part in it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidGenesis
from ledger.genesis import Genesis, Identity
from ledger.personal import ENCRYPTION_KEY_FILE, EncryptionKey
from node.config import GENESIS_FILE, KEY_FILE, NodeConfig
from node.forming import (
    HOST_PATTERN,
    IDENTITY_FILE,
    NodeIdentity,
    build_genesis,
    install_genesis,
    is_listed_node,
    make_identity,
    parse_client,
    parse_host_port,
    parse_settings,
    save_client_key,
)


def make_four(root: Path) -> list[NodeIdentity]:
    return [make_identity(root / f"n{i}", f"org{i}", f"node{i}", f"127.0.0.{i + 2}:2760{i}") for i in range(4)]


def test_identity_is_private_where_it_holds_secrets_and_shareable_where_not(tmp_path: Path) -> None:
    identity = make_identity(tmp_path / "h", "acme", "acme-1", "10.0.0.5:26600", "0.0.0.0:26600")
    home = tmp_path / "h"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / ENCRYPTION_KEY_FILE).stat().st_mode) == 0o600
    assert EncryptionKey.load(home / ENCRYPTION_KEY_FILE).public == identity.encryption_key
    assert NodeIdentity.load(home / IDENTITY_FILE) == identity
    assert identity.address == "http://10.0.0.5:26600"
    config = NodeConfig.load(home)
    assert (config.host, config.port, config.advertise, config.org) == ("0.0.0.0", 26600, "10.0.0.5:26600", "acme")
    assert config.url == "http://127.0.0.1:26600"
    with pytest.raises(FileExistsError):
        make_identity(home, "acme", "acme-1", "10.0.0.5:26600")


def test_genesis_of_four_organisations_makes_each_node_a_validator_and_others_followers(tmp_path: Path) -> None:
    identities = make_four(tmp_path)
    save_client_key(tmp_path / "keys" / "chan.key")
    client = parse_client(f"org0:chan:channel:{tmp_path / 'keys' / 'chan.pub'}")
    genesis = build_genesis("net-1", identities, [client], parse_settings(["view_timeout_ms=2000"]))
    assert [v.id for v in genesis.validators] == ["node0", "node1", "node2", "node3"]
    assert (genesis.n, genesis.quorum, genesis.consensus.view_timeout_ms) == (4, 3, 2000)
    assert Genesis.from_wire(genesis.to_wire()) == genesis
    keys = {o["id"]: o.get("encryption_key") for o in genesis.organisations}
    assert keys == {i.org: i.encryption_key.hex() for i in identities if i.encryption_key is not None}
    assert install_genesis(tmp_path / "n2", genesis) == "validator"
    assert Genesis.load(tmp_path / "n2" / GENESIS_FILE).to_wire() == genesis.to_wire()

    make_identity(tmp_path / "store", "org1", "store-9", "127.0.0.9:27000")
    assert install_genesis(tmp_path / "store", genesis) == "follower"
    make_identity(tmp_path / "stranger", "evil", "x", "127.0.0.9:27001")
    with pytest.raises(InvalidGenesis, match="not an organisation"):
        install_genesis(tmp_path / "stranger", genesis)
    assert install_genesis(tmp_path / "stranger", genesis, added=True) == "follower"
    make_identity(tmp_path / "clash", "org1", "node0", "127.0.0.9:27002")
    with pytest.raises(InvalidGenesis, match="another identity"):
        install_genesis(tmp_path / "clash", genesis)
    other = build_genesis("net-2", identities)
    with pytest.raises(FileExistsError):
        install_genesis(tmp_path / "n2", other)


def test_a_follower_listed_in_genesis_is_a_member_node_and_an_unlisted_one_is_not(tmp_path: Path) -> None:
    identities = make_four(tmp_path)
    till = make_identity(tmp_path / "till", "org1", "till", "127.0.0.9:27003")
    make_identity(tmp_path / "unlisted", "org1", "unlisted", "127.0.0.9:27004")
    genesis = build_genesis("net-1", identities, [till.as_follower()])
    assert genesis.identity("till") == Identity("till", "org1", till.public_key, frozenset({"node"}))
    assert install_genesis(tmp_path / "till", genesis) == install_genesis(tmp_path / "unlisted", genesis) == "follower"
    assert is_listed_node(tmp_path / "till", genesis) and is_listed_node(tmp_path / "n1", genesis)
    assert not is_listed_node(tmp_path / "unlisted", genesis)
    make_identity(tmp_path / "impostor", "org1", "till", "127.0.0.9:27005")
    with pytest.raises(InvalidGenesis, match="another identity"):
        install_genesis(tmp_path / "impostor", genesis)


def test_genesis_refuses_a_key_used_twice_and_bad_clients_and_settings(tmp_path: Path) -> None:
    (identity,) = make_four(tmp_path)[:1]
    with pytest.raises(InvalidGenesis, match="share a public key"):
        build_genesis("net", [identity, identity])
    (tmp_path / "bad.pub").write_text("zz")
    for spec in ("org0:chan:channel", f"org0:chan:validator:{tmp_path / 'bad.pub'}", "o:c:channel:/nonexistent"):
        with pytest.raises(InvalidGenesis):
            parse_client(spec)
    with pytest.raises(InvalidGenesis, match="hex"):
        parse_client(f"org0:chan:channel:{tmp_path / 'bad.pub'}")
    for pair in ("nope=1", "view_timeout_ms", "view_timeout_ms=-1", "view_timeout_ms=1.5"):
        with pytest.raises(InvalidGenesis):
            parse_settings([pair])


def test_a_hostile_identity_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    for text in ("[]", "{}", '{"org": "a", "name": "b", "public_keys": {"node": "00"}, "address": "http://h:1"}', "x"):
        path.write_text(text)
        with pytest.raises(InvalidGenesis):
            NodeIdentity.load(path)
    path.write_text(" " * 70_000)
    with pytest.raises(InvalidGenesis, match="larger"):
        NodeIdentity.load(path)


@given(st.text(max_size=40) | st.from_regex(r"[a-z0-9.-]{1,20}:[0-9]{1,6}", fullmatch=True))
def test_parse_host_port_refuses_or_splits_exactly(text: str) -> None:
    try:
        host, port = parse_host_port(text)
    except InvalidGenesis:
        return
    assert text.startswith(host + ":") and int(text[len(host) + 1 :]) == port and 0 <= port < 65536
    assert HOST_PATTERN.fullmatch(host)


def test_parse_host_port_examples() -> None:
    assert parse_host_port("[::1]:80") == ("[::1]", 80)
    assert parse_host_port("node.example.com:26600") == ("node.example.com", 26600)
    for text in ("host:65536", "host", ":80", "a b:80", "host:-1"):
        with pytest.raises(InvalidGenesis):
            parse_host_port(text)
