"""Fixtures that run real node processes: a single node, and a 4-node devnet, through `omsnode`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.network import Devnet, free_ports
from devnet.scenario import run_demo
from ledger.genesis import Genesis
from omsclient import Client, Keyring
from omsclient.signing import get_sealing_keys

START_TIMEOUT_S = 120.0
"""Longest wait for a started node to answer (a busy machine takes far longer than an idle one)."""


def omsnode(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"omsnode {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def omsnode_json(*args: str) -> Any:
    return json.loads(omsnode(*args, "--json").stdout)


class SingleNode:
    """One node started with `omsnode start` in its own process."""

    def __init__(self, home: Path) -> None:
        self.home = home
        (port,) = free_ports(1)
        omsnode("init", "--home", str(home), "--port", str(port))
        self.url = f"http://127.0.0.1:{port}"
        self.genesis = Genesis.load(home / "genesis.json")
        self.process: subprocess.Popen[bytes] | None = None
        self.token = self.make_token("operator-1", "all")
        """An operator token with every scope."""
        self.client = Client(self.url, self.token)
        self.keyring = Keyring(
            home / "clients", self.genesis.chain_id, self.client.valid_until, get_sealing_keys(self.genesis)
        )
        """Signs as any client identity of the network."""

    def make_token(self, identity: str, scopes: str, *flags: str) -> str:
        """A new API token, made with `omsnode token create` as an operator would."""
        home = str(self.home)
        made = omsnode("token", "create", "--home", home, "--identity", identity, "--scopes", scopes, *flags)
        return made.stdout.strip()

    def start(self) -> None:
        log = open(self.home / "node.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "start", "--home", str(self.home)], stdout=log, stderr=log
        )
        log.close()
        import time

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.client.status()
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop(kill=True)  # a node that never answered is not left running after the test
                    raise RuntimeError((self.home / "node.log").read_text()[-3000:]) from None
                time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        if self.process is not None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def send(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign, submit, wait; returns the tx status with its receipt."""
        return self.client.wait_tx(self.client.submit(self.keyring.sign(signer, kind, payload)))


@pytest.fixture
def single_node(tmp_path: Path) -> Iterator[SingleNode]:
    node = SingleNode(tmp_path / "home")
    node.start()
    yield node
    node.stop()
    node.client.close()


@pytest.fixture
def demo_node(single_node: SingleNode) -> SingleNode:
    """A single node that took the demo scenario through its API."""

    def submit(signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        receipt: dict[str, Any] = single_node.send(signer, kind, payload)["receipt"]
        return receipt

    def query(path: str, params: dict[str, Any] | None) -> Any:
        client = single_node.client
        lists = ("/v1/inventory", "/v1/journal", "/v1/invoices")
        return list(client.pages(path, **(params or {}))) if path in lists else client.get(path, **(params or {}))

    run_demo(submit, query, lambda line: None)
    return single_node


@pytest.fixture(scope="module")
def devnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("devnet") / "net"
    try:
        omsnode("devnet", "up", "--nodes", "4", "--dir", str(root))
        yield root
    finally:  # also the nodes of an `up` that failed half-way
        omsnode("devnet", "down", "--dir", str(root), check=False)


@pytest.fixture(scope="module")
def devnet(devnet_dir: Path) -> Devnet:
    return Devnet(devnet_dir)
