"""`omsnode governance` and `/v1/governance` on one real node process (one organisation: its own quorum).

A client identity added by governance gets a token (`token create --added`) and reads; once revoked, the
node refuses its token. The commands print tables, JSON with `--json`, and exit with the codes scripts use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.output import ExitCode
from ledger.keys import PrivateKey
from tests.e2e.conftest import SingleNode, omsnode

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNode]:
    node = SingleNode(tmp_path_factory.mktemp("governance-cli") / "home")
    node.start()
    yield node
    node.stop()
    node.client.close()


def run(node: SingleNode, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSNODE_")}
    command = [sys.executable, "-m", "cli.main", *args, "--node", node.url, "--token", token or node.token]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def ok_json(node: SingleNode, *args: str) -> object:
    result = run(node, *args, "--json")
    assert result.returncode == ExitCode.OK, result.stderr
    return json.loads(result.stdout)


def reads(node: SingleNode, token: str) -> int:
    return httpx.get(f"{node.url}/v1/inventory", headers={"authorization": f"Bearer {token}"}).status_code


def test_a_client_added_by_governance_reads_until_revoked(node: SingleNode, tmp_path: Path) -> None:
    key = PrivateKey.generate()
    key_file = tmp_path / "till-9.key"
    key.save(key_file)
    params = {"id": "till-9", "org": "org-0", "public_key": key.public.hex(), "roles": ["store"]}
    added = ok_json(node, "governance", "propose", "client.add", "--payload", json.dumps(params))
    assert isinstance(added, dict) and added["status"] == "committed"
    proposal = added["resource"]
    assert (proposal["status"], proposal["counted"], proposal["quorum"]) == ("executed", 1, 1)
    assert proposal["approvals"] == {"org-0": "operator-1"}

    home = str(node.home)
    refused = omsnode("token", "create", "--home", home, "--identity", "till-9", "--scopes", "all", check=False)
    assert refused.returncode == ExitCode.FAILED  # not in genesis, and not said to be added
    made = omsnode(
        "token", "create", "--home", home, "--identity", "till-9", "--scopes", "inventory:read", "--added"
    ).stdout.strip()
    assert reads(node, made) == 200
    stranger = omsnode(
        "token", "create", "--home", home, "--identity", "mallory", "--scopes", "inventory:read", "--added"
    ).stdout.strip()
    assert reads(node, stranger) == 401

    members = ok_json(node, "governance", "members")
    assert isinstance(members, dict) and "till-9" in [c["id"] for c in members["clients"]]
    assert [e["from_height"] for e in members["epochs"]] == [1] and members["validators"] == ["node-0"]

    revoked = run(node, "governance", "propose", "client.revoke", "--payload", '{"id": "till-9"}')
    assert (
        revoked.returncode == ExitCode.OK and ": executed" in revoked.stdout and "approvals: 1 of 1" in revoked.stdout
    )
    assert reads(node, made) == 401

    listed = ok_json(node, "governance", "list")
    assert isinstance(listed, dict)
    assert [(p["action"], p["status"]) for p in listed["items"]] == [
        ("client.add", "executed"),
        ("client.revoke", "executed"),
    ]
    table = run(node, "governance", "list", "--status", "executed").stdout
    assert "client.add" in table and "client.revoke" in table and "1/1" in table
    shown = run(node, "governance", "show", proposal["id"]).stdout
    assert "operator-1" in shown and "till-9" in shown


def test_bad_proposals_and_tokens_exit_with_their_codes(node: SingleNode) -> None:
    rejected = run(node, "governance", "propose", "validator.remove", "--payload", '{"id": "node-0"}')
    assert rejected.returncode == ExitCode.FAILED and "bad_payload" in rejected.stdout
    assert run(node, "governance", "show", "ab" * 32).returncode == ExitCode.REFUSED
    assert run(node, "governance", "show", "not-an-id").returncode == ExitCode.REFUSED
    assert run(node, "governance", "propose", "org.add", "--payload", "[1]").returncode == ExitCode.USAGE
    store = node.make_token("store-1", "config:read")
    assert run(node, "governance", "approve", "ab" * 32, token=store).returncode == ExitCode.AUTH
    writer = node.make_token("store-1", "governance:write")
    denied = run(node, "governance", "propose", "org.add", "--payload", '{"org": "x", "name": "X"}', token=writer)
    assert denied.returncode == ExitCode.AUTH  # a store may not govern
