"""The genesis file is checked against its declared shape at load: a wrong type or an unknown key stops the load."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import InvalidGenesis
from ledger.genesis import Genesis
from tests.helpers.builders import make_network

WIRE = make_network(validators=4).genesis.to_wire()


def load(tmp_path: Path, wire: dict[str, Any]) -> Genesis:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(wire))
    return Genesis.load(path)


def test_a_saved_genesis_loads_back_the_same(tmp_path: Path) -> None:
    genesis = make_network(validators=4).genesis
    genesis.save(tmp_path / "genesis.json")
    assert Genesis.load(tmp_path / "genesis.json") == genesis


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("consensus", "view_timeout_ms"), "3000", r"Expected `int`, got `str` - at `\$.view_timeout_ms`"),
        (("consensus", "max_block_txs"), 400.0, r"Expected `int`, got `float` - at `\$.max_block_txs`"),
        (("consensus", "view_timeout"), 3000, "unknown field `view_timeout`"),
        (("genesis_time_ms",), "0", r"Expected `int`, got `str` - at `\$.genesis_time_ms`"),
        (("validators", 0, "roles"), "validator", r"got `str` - at `\$.validators\[0\].roles`"),
        (("clients", 0, "admin"), True, "unknown field `admin`"),
        (("chain",), "x", "unknown field `chain`"),
    ],
)
def test_a_wrong_type_or_unknown_key_is_refused_at_load_naming_the_field(
    tmp_path: Path, path: tuple[Any, ...], value: Any, message: str
) -> None:
    wire = copy.deepcopy(WIRE)
    target = wire
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidGenesis, match=message):
        load(tmp_path, wire)


def test_omitted_settings_take_their_defaults(tmp_path: Path) -> None:
    wire = copy.deepcopy(WIRE)
    del wire["consensus"]["view_timeout_ms"], wire["clients"]
    genesis = load(tmp_path, wire)
    assert genesis.consensus.view_timeout_ms == 3000 and genesis.clients == ()
