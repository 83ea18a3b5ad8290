"""Running the channel puller from tests as an operator would: `omsnode channel ...` in processes of its own,
against a devnet with the sample catalogue and a channel identity's token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devnet.network import Devnet
from omsclient.customers import CUSTOMER_KEY_ENV
from tests.e2e.conftest import omsnode
from tests.helpers.channel_server import SHOP_TOKEN

SHOP_TOKEN_ENV = "TEST_SHOP_TOKEN"
"""The variable a test config names as `access_token_env` of its Shopify channel."""


@contextmanager
def channel_network(root: Path) -> Iterator[tuple[Devnet, str]]:
    """A 4-node devnet with the sample catalogue and stock, and an API token of `channel-1` on node 0."""
    try:  # the nodes are taken down also when bringing them up failed half-way
        omsnode("devnet", "up", "--nodes", "4", "--dir", str(root), "--sample-data", timeout=600)
        devnet = Devnet(root)
        home = str(devnet.nodes[0].home)
        scopes = "orders:read,orders:write"
        token = omsnode("token", "create", "--home", home, "--identity", "channel-1", "--scopes", scopes)
        yield devnet, token.stdout.strip()
    finally:
        omsnode("devnet", "down", "--dir", str(root), check=False)


class PullerProcess:
    """`omsnode channel ...` over one config and state file in `folder`."""

    def __init__(self, folder: Path, node: str, token: str, config: str) -> None:
        self.config = folder / "channels.toml"
        self.state = folder / "channels.sqlite"
        self.log = folder / "puller.log"
        self.node, self.token = node, token
        self.config.write_text(config)

    def env(self) -> dict[str, str]:
        return {**os.environ, SHOP_TOKEN_ENV: SHOP_TOKEN, CUSTOMER_KEY_ENV: "the test retailer's customer key"}

    def start(self, *, once: bool = True, metrics_port: int | None = None) -> subprocess.Popen[bytes]:
        """`channel run` (`--once` unless told) in the background, its JSON log appended to `log`."""
        args = ["channel", "run", "--config", str(self.config), "--node", self.node, "--token", self.token]
        args += ["--state", str(self.state)] + (["--once"] if once else [])
        args += [] if metrics_port is None else ["--metrics-port", str(metrics_port)]
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "cli.main", *args],
                stdout=log,
                stderr=log,
                env=self.env(),
            )

    def count_pages(self) -> int:
        """Pages saved so far, as the puller's log says."""
        return self.log.read_text().count('"event":"page"') if self.log.exists() else 0

    def read_log(self) -> list[dict[str, Any]]:
        """The JSON lines of the log."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def run_to_end(self) -> None:
        process = self.start()
        assert process.wait(timeout=600) == 0, self.log.read_text()[-3000:]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "channel", *args, "--state", str(self.state)],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env(),
        )
        assert not check or result.returncode == 0, result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)
