"""A network of four organisations formed with the commands alone, as four operators on four machines would.

Each organisation runs `omsnode init` for its node (on its own loopback
address, 127.0.0.2 to 127.0.0.5), one of them builds the genesis from the
four identity files and the client keys, each installs it and starts its
node. The network commits orders; a store's node that genesis lists as a
follower (not a validator) joins, follows every block through sealed reads and
serves its organisation's API (and passes its clients' orders on); a validator restarted on another port
is found again by its peers. Then, by governance (each change proposed by one
organisation's operator and approved by the others' on their own nodes), a
fifth organisation joins with its validator and the network commits with
five (the added validator, moved to another port, is found again too), one
validator's key is rotated and another validator removed; and
every node's chain verifies across the changes. Nothing here uses the
devnet's code: only `omsnode` commands and HTTP.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet.network import free_ports
from tests.e2e.conftest import omsnode
from tests.e2e.integrator import order_payload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

ORGS = ("retail", "warehouse", "stores", "partner")
"""The four organisations, whose nodes listen on 127.0.0.2 to 127.0.0.5 in this order."""

INTERVAL = 5
"""Checkpoint interval of the genesis: a validator set change takes effect within this many blocks and one."""

WAIT_S = 240.0
"""Longest wait for anything the network does (the machine may be busy)."""


def wait_for(what: str, check: Any, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


class Network:
    """Homes, processes and tokens of the organisations' nodes, driven through `omsnode` only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}

    def home(self, name: str) -> str:
        return str(self.root / name)

    def start(self, name: str, *flags: str) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "start", "--home", self.home(name), *flags], stdout=log, stderr=log
        )
        log.close()

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def status(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(omsnode("status", "--home", self.home(name), "--json").stdout)
        return result

    def height(self, name: str) -> int:
        result: int = httpx.get(f"{self.urls[name]}/v1/status", timeout=5).json()["height"]
        return result

    def wait_up(self, name: str) -> None:
        def answers() -> bool:
            process = self.processes[name]
            if process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{(self.root / f'{name}.log').read_text()[-3000:]}")
            return httpx.get(f"{self.urls[name]}/v1/status", timeout=5).status_code == 200

        wait_for(f"{name} to answer", answers)

    def cli(self, *args: str, node: str, token: str) -> str:
        return omsnode(*args, "--node", self.urls[node], "--token", token).stdout


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path)
    yield net
    for name in list(net.processes):
        net.stop(name)


def test_four_organisations_form_a_network_with_the_commands_alone(network: Network, tmp_path: Path) -> None:
    ports = free_ports(8)
    keys = tmp_path / "keys"
    # 1. Each organisation makes its node's identity on its own machine.
    for i, org in enumerate(ORGS):
        address = f"127.0.0.{i + 2}:{ports[i]}"
        omsnode("init", "--home", network.home(org), "--org", org, "--name", f"{org}-node", "--advertise", address)
        network.urls[org] = f"http://{address}"
        identity = json.loads((tmp_path / org / "identity.json").read_text())
        assert identity["org"] == org and identity["address"] == f"http://{address}"
        assert (tmp_path / org / "node_key").stat().st_mode & 0o077 == 0
    till_address = f"127.0.0.6:{ports[4]}"  # a store's node that follows without voting
    omsnode(
        "init", "--home", network.home("till"), "--org", "stores", "--name", "stores-till", "--advertise", till_address
    )
    operators = {org: "ops" if org == "retail" else f"{org}-ops" for org in ORGS}
    for client in ("web-shop", "till-shop", "till-clerk", *operators.values()):
        omsnode("client-key", "create", "--out", str(keys / f"{client}.key"))

    # 2. One of them builds the genesis; everyone checks it and installs it.
    genesis = str(tmp_path / "genesis.json")
    omsnode(
        "genesis",
        "create",
        "--chain-id",
        "retail-net",
        *[arg for org in ORGS for arg in ("--identity", str(tmp_path / org / "identity.json"))],
        "--follower",
        str(tmp_path / "till" / "identity.json"),
        "--client",
        f"retail:web-shop:channel:{keys / 'web-shop.pub'}",
        *[
            arg
            for org, ident in operators.items()
            for arg in ("--client", f"{org}:{ident}:operator:{keys / ident}.pub")
        ],
        "--client",
        f"stores:till-clerk:store:{keys / 'till-clerk.pub'}",
        "--client",
        f"stores:till-shop:channel:{keys / 'till-shop.pub'}",
        "--set",
        f"checkpoint_interval={INTERVAL}",
        "--out",
        genesis,
    )
    inspected = json.loads(omsnode("genesis", "inspect", genesis, "--json").stdout)
    assert [v["id"] for v in inspected["validators"]] == [f"{org}-node" for org in ORGS]
    assert (inspected["quorum"], inspected["faults_tolerated"]) == (3, 1)
    assert inspected["settings"]["checkpoint_interval"] == INTERVAL
    assert {c["id"]: c["roles"] for c in inspected["clients"]}["till-clerk"] == ["store"]
    assert {c["id"]: c["roles"] for c in inspected["clients"]}["stores-till"] == ["node"]
    for org in ORGS:
        assert "this node is a validator" in omsnode("init", "--home", network.home(org), "--genesis", genesis).stdout

    # 3. Four starts; the network commits orders.
    for org in ORGS:
        network.start(org)
    for org in ORGS:
        network.wait_up(org)
    first_line = json.loads((tmp_path / "retail.log").read_text().splitlines()[0])
    assert (first_line["event"], first_line["chain_id"]) == ("start", "retail-net")
    assert first_line["node_id"] == "retail-node" and first_line["role"] == "validator"
    assert first_line["advertise"] == network.urls["retail"] and len(first_line["peers"]) == 3
    ops = omsnode(
        "token", "create", "--home", network.home("retail"), "--identity", "ops", "--scopes", "all",
        "--key", str(keys / "ops.key"),
    ).stdout.strip()  # fmt: skip
    shop = omsnode(
        "token", "create", "--home", network.home("retail"), "--identity", "web-shop", "--scopes", "all",
        "--key", str(keys / "web-shop.key"),
    ).stdout.strip()  # fmt: skip
    place = {"location": "LIS-1", "type": "store", "org": "stores", "region": "PT", "lat": 38_722_000, "lon": 1}
    for kind, payload in (
        ("sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
        ("location.upsert", place),
        ("stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 100}]}),
    ):
        sent = omsnode(
            "tx", "send", kind, "--home", network.home("retail"), "--as", "ops", "--keys", str(keys),
            "--payload", json.dumps(payload), "--wait", "--token", ops, "--json",
        ).stdout  # fmt: skip
        assert json.loads(sent)["receipt"]["ok"], sent
    order_ids = [place_order(network, tmp_path, "retail", shop, f"web-{i}") for i in range(3)]

    # 4. A store's node that genesis does not list follows, serves its organisation's API and passes orders on.
    joined = omsnode("init", "--home", network.home("till"), "--genesis", genesis).stdout
    assert "this node is a follower" in joined
    network.urls["till"] = f"http://{till_address}"
    network.start("till")
    network.wait_up("till")
    wait_for("the follower to catch up", lambda: network.height("till") >= network.height("retail"))
    assert network.status("till")["role"] == "follower" and not network.status("till")["voting"]
    clerk = omsnode(
        "token", "create", "--home", network.home("till"), "--identity", "till-clerk", "--scopes", "all",
    ).stdout.strip()  # fmt: skip
    stock = json.loads(network.cli("stock", "LIS-1", "TEE-M", "--json", node="till", token=clerk))
    assert stock["on_hand"] == 100
    refused = omsnode(
        "token", "create", "--home", network.home("till"), "--identity", "web-shop", "--scopes", "all",
        "--key", str(keys / "web-shop.key"), check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "client keys only" in refused.stderr, "a home holds its own organisation's keys"
    till_shop = omsnode(
        "token", "create", "--home", network.home("till"), "--identity", "till-shop", "--scopes", "all",
        "--key", str(keys / "till-shop.key"),
    ).stdout.strip()  # fmt: skip
    order_ids.append(place_order(network, tmp_path, "till", till_shop, "till-1"))
    assert network.status("retail")["height"] >= network.status("till")["height"] > 0

    # 5. A validator moved to another port is found again by its peers, without touching genesis.
    network.stop("warehouse")
    moved = f"127.0.0.3:{ports[5]}"
    network.urls["warehouse"] = f"http://{moved}"
    network.start("warehouse", "--advertise", moved, "--listen", moved, "--log-format", "text")
    network.wait_up("warehouse")
    for org in ("retail", "stores", "partner", "till"):
        wait_for(
            f"{org} to know where warehouse-node is",
            lambda org=org: peer_address(network, org, ops, "warehouse-node") == f"http://{moved}",
        )
    assert "started: chain retail-net, node warehouse-node" in (tmp_path / "warehouse.log").read_text()
    network.stop("partner")  # with one node down, the moved one's vote is needed for every block
    order_ids.append(place_order(network, tmp_path, "retail", shop, "web-after-move"))
    height = network.height("retail")
    wait_for("the moved validator to hold the new blocks", lambda: network.height("warehouse") >= height)
    network.start("partner")
    network.wait_up("partner")
    wait_for("everyone to reach the same height", lambda: all(network.height(n) >= height for n in network.urls))

    # 6. Governance: a fifth organisation joins with its validator; the network commits with five.
    tokens = {"retail": ops} | {
        org: omsnode(
            "token", "create", "--home", network.home(org), "--identity", operators[org], "--scopes", "all",
            "--key", str(keys / f"{operators[org]}.key"),
        ).stdout.strip()
        for org in ORGS[1:]
    }  # fmt: skip
    depot_address = f"127.0.0.7:{ports[6]}"
    omsnode(
        "init", "--home", network.home("depot"), "--org", "depot", "--name", "depot-node", "--advertise", depot_address
    )
    network.urls["depot"] = f"http://{depot_address}"
    depot_key = json.loads((tmp_path / "depot" / "identity.json").read_text())["public_keys"]["node"]
    decide(network, tokens, "org.add", {"org": "depot", "name": "Depot"}, "warehouse", "stores")
    params = {"id": "depot-node", "org": "depot", "public_key": depot_key, "address": network.urls["depot"]}
    added = decide(network, tokens, "validator.add", params, "warehouse", "stores", "partner")  # 4 of 5 now
    start = epoch_start(network, tokens["retail"])
    installed = omsnode("init", "--home", network.home("depot"), "--genesis", genesis, "--added").stdout
    assert "this node is a follower" in installed
    network.start("depot")  # its store knows only genesis: it follows, then restarts as the validator it now is
    network.wait_up("depot")
    wait_for("depot to sync past its addition", lambda: network.height("depot") >= added["executed_height"])
    assert network.status("depot")["role"] == "follower"
    network.stop("depot")
    network.start("depot")
    network.wait_up("depot")
    assert network.status("depot")["role"] == "validator"
    reached = commit_past(network, tmp_path, shop, start + INTERVAL, "five")
    assert all(len(signers(network, ops, h)) >= 4 for h in range(start, reached + 1))
    wait_for("depot-node to vote", lambda: network.status("depot")["voting"])
    reached = commit_past(network, tmp_path, shop, reached + 1, "depot-votes")
    assert network.status("depot")["last_voted_height"] >= start
    # Moved to another port, the added validator is found again: its peers take its address records too.
    network.stop("depot")
    depot_address = f"127.0.0.7:{ports[7]}"
    network.urls["depot"] = f"http://{depot_address}"
    network.start("depot", "--advertise", depot_address, "--listen", depot_address)
    network.wait_up("depot")
    for org in (*ORGS, "till"):
        wait_for(
            f"{org} to know where depot-node is",
            lambda org=org: peer_address(network, org, ops, "depot-node") == network.urls["depot"],
        )

    # 7. partner-node's key rotated: partner restarts with its new key and votes again.
    omsnode("client-key", "create", "--out", str(keys / "partner-node.key"))
    rotated = (keys / "partner-node.pub").read_text().strip()
    decide(network, tokens, "validator.rotate", {"id": "partner-node", "public_key": rotated}, *ORGS[1:])
    start = epoch_start(network, tokens["retail"])
    commit_past(network, tmp_path, shop, start - 1, "rotating")
    network.stop("partner")
    shutil.copyfile(keys / "partner-node.key", tmp_path / "partner" / "node_key")
    network.start("partner")
    network.wait_up("partner")
    reached = commit_past(network, tmp_path, shop, start + INTERVAL, "rotated")
    wait_for("partner-node to vote with its new key", lambda: network.status("partner")["voting"])
    reached = commit_past(network, tmp_path, shop, reached + 1, "partner-votes")
    assert network.status("partner")["last_voted_height"] > start

    # 8. stores-node removed: it stops signing, the four others go on.
    decide(network, tokens, "validator.remove", {"id": "stores-node"}, *ORGS[1:])
    start = epoch_start(network, tokens["retail"])
    reached = commit_past(network, tmp_path, shop, start + INTERVAL, "removed")
    assert all("stores-node" not in signers(network, ops, h) for h in range(start, reached + 1))
    assert set(network.status("retail")["validators"]) == {
        "retail-node",
        "warehouse-node",
        "partner-node",
        "depot-node",
    }
    height = reached

    # 9. Every order is on every node, and every node's chain verifies across the changes.
    for order_id in order_ids:
        assert json.loads(network.cli("order", "get", order_id, "--json", node="till", token=till_shop))["order_id"]
    for name in list(network.processes):
        network.stop(name)
    for name in (*ORGS, "till", "depot"):
        report = json.loads(omsnode("verify-chain", "--home", network.home(name), "--json").stdout)
        assert report["ok"] and report["height"] >= height, (name, report)


def place_order(network: Network, tmp_path: Path, node: str, token: str, ref: str) -> str:
    """Place an order through `node` with `omsnode order create`; answers its order id once committed."""
    path = tmp_path / f"{ref}.json"
    path.write_text(json.dumps(order_payload(ref)))
    placed = network.cli("order", "create", "--payload", f"@{path}", "--json", node=node, token=token)
    result = json.loads(placed)
    assert result["status"] == "committed", placed
    order_id: str = result["resource"]["order_id"]
    return order_id


def peer_address(network: Network, node: str, token: str, peer: str) -> str:
    peers = json.loads(network.cli("peers", "--json", node=node, token=token))
    return next(row["address"] for row in peers if row["id"] == peer)


def decide(network: Network, tokens: dict[str, str], kind: str, params: dict[str, Any], *approvers: str) -> Any:
    """Propose as retail's operator, approve as each of `approvers`' operators through its own node; answers
    the executed proposal."""
    args = ("governance", "propose", kind, "--payload", json.dumps(params), "--json")
    proposed = json.loads(network.cli(*args, node="retail", token=tokens["retail"]))
    assert proposed["status"] == "committed", proposed
    proposal = proposed["resource"]["id"]
    for org in approvers:
        approved = json.loads(network.cli("governance", "approve", proposal, "--json", node=org, token=tokens[org]))
        assert approved["status"] == "committed", approved

    def executed() -> Any:
        shown = json.loads(network.cli("governance", "show", proposal, "--json", node="retail", token=tokens["retail"]))
        return shown if shown["status"] == "executed" else None

    return wait_for(f"{kind} to be executed", executed)


def epoch_start(network: Network, token: str) -> int:
    """The first height certified by the validator set last scheduled."""
    members = json.loads(network.cli("governance", "members", "--json", node="retail", token=token))
    start: int = members["epochs"][-1]["from_height"]
    return start


def commit_past(network: Network, tmp_path: Path, token: str, height: int, tag: str) -> int:
    """Place orders through retail until its chain is past `height`; answers the height every running node
    then holds."""
    count = 0
    while network.height("retail") <= height:
        place_order(network, tmp_path, "retail", token, f"{tag}-{count}")
        count += 1
    reached = network.height("retail")
    wait_for("every node to reach the height", lambda: all(network.height(n) >= reached for n in network.processes))
    return reached


def signers(network: Network, token: str, height: int) -> set[str]:
    """The validators whose votes certify block `height`."""
    headers = {"Authorization": f"Bearer {token}"}
    block = httpx.get(f"{network.urls['retail']}/v1/blocks/{height}", headers=headers, timeout=10).json()
    return {validator for validator, _ in block["certificate"]["signatures"]}
