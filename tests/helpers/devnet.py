"""Driving a devnet of real node processes from tests: load, wait, compare heads, wipe a node.

Everything goes through the nodes' HTTP API, as an operator or integrator
would; nothing reaches into a running node.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from devnet.network import Devnet
from ledger.keys import PrivateKey
from node.config import DATA_DIR, KEY_FILE, WAL_FILE, NodeConfig
from omsclient import Client, Keyring, NodeError, tx_id
from p2p.envelope import Sealer
from p2p.reads import ReadSealer

T = TypeVar("T")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def status(url: str) -> dict[str, Any] | None:
    """A node's `/v1/status`, or None while it does not answer."""
    try:
        result: dict[str, Any] = httpx.get(f"{url}/v1/status", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return result


def sealed_read(
    devnet: Devnet, reader: int, target: int, path: str, params: dict[str, int] | None = None, timeout: float = 30
) -> httpx.Response:
    """`GET path` of node `target`'s `/p2p` routes, sealed with node `reader`'s key as its sync would."""
    home = devnet.node(reader).home
    names = [NodeConfig.load(devnet.node(i).home).node_id for i in (reader, target)]
    sealer = ReadSealer(
        Sealer(PrivateKey.load(home / KEY_FILE), names[0], devnet.genesis.chain_id), lambda: int(time.time() * 1000)
    )
    headers = sealer.headers(names[1], path, params)
    return httpx.get(devnet.node(target).url + path, params=params, headers=headers, timeout=timeout)


def load(devnet: Devnet, via: int, tag: str, *, seconds: float = 60.0, until_height: int = 0) -> int:
    """Send batches of 20 one-tx-each catalogue updates to node `via`, each batch waited for,
    for `seconds` or until the chain reaches `until_height`; returns the height reached."""
    client = devnet.client(via)
    keyring = devnet.keyring(client)
    deadline = time.monotonic() + seconds
    sent = 0
    height: int = client.status()["height"]
    while time.monotonic() < deadline and (not until_height or height < until_height):
        txs = [
            keyring.sign(
                "operator-1",
                "sku.upsert",
                {"sku": f"{tag}-{sent + i}", "price": 1, "currency": "EUR", "tax_class": "standard"},
            )
            for i in range(20)
        ]
        verdicts = client.submit_many(txs)
        refused = [verdict for verdict in verdicts if verdict.get("error")]
        assert not refused, f"the node refused load txs tagged {tag!r}: {refused[0]}"
        last = verdicts[-1]["tx_id"]
        sent += len(txs)
        height = client.wait_tx(last, timeout=60)["height"]
    height = client.status()["height"]
    client.close()
    return height


def converged(devnet: Devnet, height: int) -> bool:
    """Every node is at `height` or beyond, and those at `height` agree on head hash and state root."""
    rows = [status(node.url) for node in devnet.nodes]
    if any(row is None or row["height"] < height for row in rows):
        return False
    return (
        len({(row["head_hash"], row["state_root"]) for row in rows if row is not None and row["height"] == height}) == 1
    )


def wait_converged(devnet: Devnet, height: int, timeout: float = 90.0) -> list[dict[str, Any]]:
    """Wait until every node is at `height` or beyond and those at `height` agree; returns the block there."""
    wait_for(lambda: converged(devnet, height), timeout, f"all nodes to reach height {height} with one head")
    blocks = []
    for node in devnet.nodes:
        with devnet.client(node.index) as client:
            blocks.append(client.get(f"/v1/blocks/{height}"))
    assert len({block["hash"] for block in blocks}) == 1
    return blocks


def wipe(devnet: Devnet, index: int) -> None:
    """Remove a (stopped) node's LevelDB and consensus log, keeping its keys and config."""
    home = devnet.nodes[index].home
    shutil.rmtree(home / DATA_DIR)
    (home / WAL_FILE).unlink(missing_ok=True)


@contextmanager
def node_process(devnet: Devnet, index: int, *flags: str, log: str = "node.log") -> Iterator[subprocess.Popen[bytes]]:
    """`omsnode start` for one node with extra flags (output appended to `log` in its home),
    stopped (killed if need be) on the way out."""
    home = devnet.nodes[index].home
    with open(home / log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "start", "--home", str(home), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


class Load:
    """Catalogue updates in batches of 10, each waited for, until stopped; keeps every committed tx id. A batch
    whose node does not answer goes to the next node (the nodes may be restarted under it)."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.tx_ids: list[str] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self._via = 0

    def run(self) -> None:
        keyring = Keyring(self.devnet.clients_dir, self.devnet.genesis.chain_id, self._valid_until)
        sku = {"price": 1, "currency": "EUR", "tax_class": "standard"}
        try:
            while not self.stop.is_set():
                n = len(self.tx_ids)
                txs = [keyring.sign("operator-1", "sku.upsert", {"sku": f"L-{n + i}", **sku}) for i in range(10)]
                self._commit(txs)
                self.tx_ids += [tx_id(tx) for tx in txs]
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _valid_until(self) -> int:
        return self._call(lambda client: client.valid_until())

    def _commit(self, txs: list[dict[str, Any]]) -> None:
        def send(client: Client) -> None:
            client.submit_many(txs)
            client.wait_tx(tx_id(txs[-1]), timeout=120)

        self._call(send)

    def _call(self, action: Callable[[Client], T], attempts: int = 40) -> T:
        for _ in range(attempts):
            client = self.devnet.client(self._via % len(self.devnet.nodes), timeout=30)
            try:
                return action(client)
            except (httpx.HTTPError, NodeError, TimeoutError):
                self._via += 1
                time.sleep(0.5)
            finally:
                client.close()
        raise TimeoutError(f"no node took the load in {attempts} attempts")
