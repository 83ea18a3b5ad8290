"""A devnet: N validator nodes as separate processes on this machine.

`up` forms a network of N organisations (one distribution point each, with
one validator node) as organisations on separate machines would, through the
steps of `omsnode init`, `client-key create`, `genesis create` and `init
--genesis` (`node.home.create_network`): each node its own home (LevelDB,
config, key, identity) and port under the devnet folder. It then starts
`omsnode start` for each and waits until they answer. The folder keeps
`devnet.json` (ports and process ids), so later commands (`status`, `kill`,
`restart`, `down`, `load`) find the nodes. Client keys are in `clients/`
(and in every node's home, so that a node can sign for a token's identity).
One API token, for the operator identity with every scope, is accepted by
every node and kept in `api_token`: the devnet's own tools (`load`, `demo`,
`bench`) read through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from ledger.genesis import ConsensusParams, Genesis
from node.config import CLIENTS_DIR, GENESIS_FILE, NodeConfig
from node.home import create_network
from node.tokens import SCOPES, TokenStore, make_token
from omsclient import Client, Keyring
from omsclient.signing import get_sealing_keys

STATE_FILE = "devnet.json"
CLIENTS = "clients"
TOKEN_FILE = "api_token"
TOOLS_IDENTITY = "operator-1"
"""The identity the devnet's own token acts as."""


def free_ports(count: int) -> list[int]:
    """Ports that are free on localhost right now."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class NodeInfo:
    """One devnet node."""

    index: int
    home: Path
    port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Devnet:
    """The nodes of one devnet folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        state_path = self.root / STATE_FILE
        if not state_path.exists():
            raise FileNotFoundError(f"{self.root} holds no devnet; run `omsnode devnet up --dir {root}` first")
        state = json.loads(state_path.read_text())
        self.nodes = [NodeInfo(n["index"], self.root / n["home"], n["port"], n.get("pid")) for n in state["nodes"]]
        self.genesis = Genesis.load(self.nodes[0].home / GENESIS_FILE)

    def reload(self) -> None:
        """Read the nodes' process ids again from the folder (another command may have restarted them)."""
        self.nodes = Devnet(self.root).nodes

    @classmethod
    def create(
        cls, root: Path, count: int, consensus: ConsensusParams | None = None, test_faults: bool = False
    ) -> Devnet:
        """Form a network of `count` nodes in `root`; `test_faults`: every node accepts the test-only fault
        settings (`NodeConfig.test_faults`), as `omsnode devnet chaos` needs."""
        root = root.resolve()
        if (root / STATE_FILE).exists():
            raise FileExistsError(f"{root} already holds a devnet; `omsnode devnet down --dir {root}` and remove it")
        root.mkdir(parents=True, exist_ok=True)
        ports = free_ports(count)
        homes = [root / f"node-{i}" for i in range(count)]
        genesis = create_network(
            homes, ports, root / CLIENTS, chain_id=f"oms-devnet-{os.urandom(2).hex()}", consensus=consensus
        )
        token = make_token()
        for home in homes:
            shutil.copytree(root / CLIENTS, home / CLIENTS_DIR)
            if test_faults:
                replace(NodeConfig.load(home), test_faults=True).save(home)
            TokenStore(home).create(genesis, TOOLS_IDENTITY, SCOPES, "devnet tools", token=token)
        fd = os.open(root / TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        nodes = [{"index": i, "home": f"node-{i}", "port": port} for i, port in enumerate(ports)]
        (root / STATE_FILE).write_text(json.dumps({"nodes": nodes}, indent=2) + "\n")
        return cls(root)

    def _save(self) -> None:
        nodes = [{"index": n.index, "home": n.home.name, "port": n.port, "pid": n.pid} for n in self.nodes]
        (self.root / STATE_FILE).write_text(json.dumps({"nodes": nodes}, indent=2) + "\n")

    @property
    def clients_dir(self) -> Path:
        return self.root / CLIENTS

    @property
    def token(self) -> str:
        """The API token every node of this devnet accepts (operator identity, every scope)."""
        return (self.root / TOKEN_FILE).read_text().strip()

    def client(self, index: int, timeout: float = 10.0) -> Client:
        """A client of node `index` that reads with the devnet's token."""
        return Client(self.node(index).url, self.token, timeout=timeout)

    def keyring(self, client: Client) -> Keyring:
        """Signs as any client identity of the devnet, in the window `client`'s node suggests."""
        return Keyring(self.clients_dir, self.genesis.chain_id, client.valid_until, get_sealing_keys(self.genesis))

    def node(self, index: int) -> NodeInfo:
        if not 0 <= index < len(self.nodes):
            raise IndexError(f"node {index} does not exist; this devnet has nodes 0..{len(self.nodes) - 1}")
        return self.nodes[index]

    # -- processes --------------------------------------------------------------------

    def is_running(self, node: NodeInfo) -> bool:
        if node.pid is None:
            return False
        try:
            os.kill(node.pid, 0)
        except ProcessLookupError:
            return False
        try:
            with open(f"/proc/{node.pid}/stat") as stat:
                return stat.read().split()[2] != "Z"
        except OSError:
            return True

    def start(self, index: int) -> None:
        node = self.node(index)
        if self.is_running(node):
            return
        log = open(node.home / "node.log", "ab")  # noqa: SIM115 - handed to the child process
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "start", "--home", str(node.home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        node.pid = process.pid
        self._save()

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node.index)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        node = self.node(index)
        if node.pid is not None and self.is_running(node):
            os.kill(node.pid, sig)
            _reap(node.pid)
        node.pid = None
        self._save()

    def stop(self, index: int, timeout: float = 10.0) -> None:
        """Stop one node as an operator would (SIGTERM), killing it if it has not ended within `timeout`."""
        node = self.node(index)
        if node.pid is not None and self.is_running(node):
            os.kill(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while node.pid is not None and self.is_running(node) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kill(index)

    def stop_all(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            if node.pid is not None and self.is_running(node):
                os.kill(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while node.pid is not None and self.is_running(node) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.kill(node.index)

    # -- observation --------------------------------------------------------------------

    def status(self, index: int, timeout: float = 2.0) -> dict[str, Any]:
        """The node's `/v1/status` plus `index`, `url`, `up` and `peers`."""
        node = self.node(index)
        out: dict[str, Any] = {
            "index": index,
            "url": node.url,
            "up": False,
            "height": None,
            "view": None,
            "voting": None,
            "head_hash": None,
            "peers": [],
        }
        try:
            status = httpx.get(f"{node.url}/v1/status", timeout=timeout).json()
            peers = httpx.get(f"{node.url}/v1/peers", timeout=timeout).json()
        except (httpx.HTTPError, ValueError):
            return out
        out.update(
            up=True,
            height=status["height"],
            view=status["view"],
            voting=status["voting"],
            mempool=status["mempool"],
            head_hash=status["head_hash"],
            last_voted_height=status.get("last_voted_height"),
            consensus_halted=status.get("consensus_halted"),
            base_height=status.get("base_height"),
            primary=status["primary"],
            node_id=status["node_id"],
            peers=peers,
        )
        return out

    def wait_until_up(self, indexes: list[int] | None = None, timeout: float = 60.0) -> None:
        """Wait until the given nodes (all by default) answer `/v1/status`."""
        pending = set(range(len(self.nodes)) if indexes is None else indexes)
        deadline = time.monotonic() + timeout
        while pending:
            pending = {i for i in pending if not self.status(i, timeout=1.0)["up"]}
            if not pending:
                return
            for i in pending:
                if not self.is_running(self.nodes[i]):
                    tail = (self.nodes[i].home / "node.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"node {i} exited at start:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes {sorted(pending)} did not come up within {timeout} s")
            time.sleep(0.2)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
