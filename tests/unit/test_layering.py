"""The layering of DESIGN.md, enforced: an AST check of every import in every package.

Dependencies point down the table and never back up: `consensus` knows no
socket or clock, `contracts` knows no node, `ledger` knows no API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROJECT = {"ledger", "contracts", "consensus", "p2p", "node", "omsclient", "cli", "devnet", "channels"}

FORBIDDEN: dict[str, set[str]] = {
    "ledger": PROJECT - {"ledger"} | {"fastapi", "uvicorn", "httpx", "pydantic"},
    "contracts": PROJECT - {"ledger", "contracts"}
    | {"fastapi", "uvicorn", "httpx", "plyvel", "msgpack", "msgspec", "os", "time", "random", "datetime", "socket"},
    "consensus": PROJECT - {"ledger", "consensus"}
    | {"fastapi", "uvicorn", "httpx", "plyvel", "asyncio", "socket", "threading", "time", "random", "os"},
    "p2p": {"node", "cli", "devnet", "contracts", "consensus", "fastapi", "uvicorn"},
    "node": {"omsclient", "cli", "devnet"},
    "omsclient": PROJECT - {"ledger", "omsclient"} | {"fastapi", "uvicorn", "pydantic", "plyvel"},
    "devnet": {"cli"},
    "channels": PROJECT - {"omsclient", "channels"} | {"fastapi", "uvicorn", "pydantic", "plyvel", "msgspec"},
}
"""Top-level modules each package may not import."""


def find_violations(package: str, root: Path = ROOT) -> list[str]:
    """Every import in `package` that DESIGN.md's layering forbids, as `file:line imports name`."""
    banned = FORBIDDEN[package]
    found = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in banned:
                    found.append(f"{path.relative_to(root)}:{node.lineno} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_the_layering(package: str) -> None:
    assert find_violations(package) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    (tmp_path / "consensus").mkdir()
    (tmp_path / "consensus" / "bad.py").write_text("import time\nfrom node.driver import ConsensusDriver\n")
    assert find_violations("consensus", tmp_path) == [
        "consensus/bad.py:1 imports time",
        "consensus/bad.py:2 imports node.driver",
    ]
