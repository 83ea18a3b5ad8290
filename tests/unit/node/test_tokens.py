"""The token file is read against its declared shape: `"scopes": "all"` and unknown keys are refused, not guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.config import CLIENTS_DIR
from node.home import create_network
from node.node import Node
from node.tokens import SCOPES, TOKENS_FILE, TokenError, TokenStore, install_client_key
from tests.helpers.builders import make_network


def stored(**change: Any) -> dict[str, Any]:
    entry = {"id": "1f2e3d4c", "identity": "channel-1", "scopes": ["orders:read"], "hash": "00" * 32}
    return entry | {"created_ms": 1, "label": "", "rate_per_s": None} | change


def write(home: Path, body: Any) -> TokenStore:
    home.mkdir(exist_ok=True)
    (home / TOKENS_FILE).write_text(json.dumps(body))
    return TokenStore(home)


def test_tokens_made_by_the_store_read_back(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.create(make_network().genesis, "channel-1", SCOPES, "all of them", rate_per_s=5)
    (token,) = TokenStore(tmp_path).tokens().values()
    assert (token.scopes, token.label, token.rate_per_s) == (SCOPES, "all of them", 5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tokens": [stored(scopes="all")]}, r"token 0: Expected `array`, got `str` - at `\$.scopes`"),
        ({"tokens": [stored(scopes=["orders:everything"])]}, r"unknown scopes \['orders:everything'\]"),
        ({"tokens": [stored(rate_per_s="5")]}, r"Expected `int \| null`, got `str` - at `\$.rate_per_s`"),
        ({"tokens": [stored(admin=True)]}, "unknown field `admin`"),
        ({"tokens": [stored(created_ms=1.5)]}, r"Expected `int`, got `float`"),
        ({"tokens": [], "version": 2}, "unknown field `version`"),
        ([], r"Expected `object`, got `array`"),
    ],
)
def test_a_malformed_token_file_is_refused_naming_the_field(tmp_path: Path, body: Any, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        write(tmp_path, body).tokens()


def test_a_node_does_not_start_on_a_malformed_token_file(tmp_path: Path) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    write(homes[0], {"tokens": [stored(scopes="all")]})
    with pytest.raises(TokenError, match="scopes"):
        Node(homes[0])


def test_a_client_key_goes_into_a_home_only_as_its_identitys_of_the_nodes_organisation(tmp_path: Path) -> None:
    home, keys = tmp_path / "node", tmp_path / "keys"
    genesis = create_network([home], [27500], keys)
    source = keys / "channel-1.key"
    installed = install_client_key(home, genesis, "org-0", "channel-1", source)
    assert installed.read_bytes() == source.read_bytes() and installed.stat().st_mode & 0o777 == 0o600
    assert (home / CLIENTS_DIR).stat().st_mode & 0o077 == 0
    with pytest.raises(TokenError, match="not the key of 'store-1'"):
        install_client_key(home, genesis, "org-0", "store-1", source)
    with pytest.raises(TokenError, match="'org-1''s client keys only"):
        install_client_key(home, genesis, "org-1", "channel-1", source)
    source.chmod(0o644)
    with pytest.raises(TokenError, match="readable by others"):
        install_client_key(home, genesis, "org-0", "channel-1", source)
