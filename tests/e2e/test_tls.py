"""A network whose nodes serve their API and /p2p over HTTPS only, with certificates named in their config."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest

from devnet.network import free_ports
from omsclient import Client, Keyring, tx_id
from tests.e2e.conftest import omsnode
from tests.helpers.devnet import wait_for
from tests.helpers.tls import make_certificates

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def test_four_nodes_agree_over_https_and_refuse_plain_http(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path / "tls", ["127.0.0.1"])
    ports = free_ports(4)
    homes = [tmp_path / f"n{i}" for i in range(4)]
    for i, home in enumerate(homes):
        omsnode(
            "init", "--home", str(home), "--org", f"org{i}", "--name", f"node{i}",
            "--advertise", f"127.0.0.1:{ports[i]}", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(ca),
        )  # fmt: skip
    omsnode("client-key", "create", "--out", str(tmp_path / "keys" / "ops.key"))
    genesis = tmp_path / "genesis.json"
    identities = [arg for home in homes for arg in ("--identity", str(home / "identity.json"))]
    client = f"org0:ops:operator:{tmp_path / 'keys' / 'ops.pub'}"
    omsnode("genesis", "create", "--chain-id", "tls-net", *identities, "--client", client, "--out", str(genesis))
    assert all(v["address"].startswith("https://") for v in json.loads(genesis.read_text())["validators"])
    processes = []
    for home in homes:
        omsnode("init", "--home", str(home), "--genesis", str(genesis))
        log = open(home / "node.log", "ab")  # noqa: SIM115 - owned by the child
        processes.append(
            subprocess.Popen([sys.executable, "-m", "cli.main", "start", "--home", str(home)], stdout=log, stderr=log)
        )
        log.close()
    verify = ssl.create_default_context(cafile=str(ca))
    urls = [f"https://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            wait_for(partial(_answers, url, verify), 180, f"{url} to answer over HTTPS")
        with pytest.raises(httpx.HTTPError):
            httpx.get(urls[0].replace("https", "http") + "/v1/status", timeout=5).raise_for_status()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{urls[0]}/v1/status", timeout=5)  # the system's authorities do not know the network's CA

        first = Client(urls[0], verify=verify)
        keyring = Keyring(tmp_path / "keys", "tls-net", first.valid_until)
        tx = keyring.sign("ops", "sku.upsert", {"sku": "TLS-1", "price": 1, "currency": "EUR", "tax_class": "standard"})
        first.submit(tx)
        token = omsnode("token", "create", "--home", str(homes[3]), "--identity", "ops", "--scopes", "all").stdout
        last = Client(urls[3], token.strip(), verify=verify)
        assert last.wait_tx(tx_id(tx), timeout=180)["status"] == "committed"
        status = json.loads(omsnode("status", "--home", str(homes[3]), "--json").stdout)
        assert status["advertise"] == urls[3] and status["height"] >= 1
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def _answers(url: str, verify: ssl.SSLContext) -> bool:
    try:
        return httpx.get(f"{url}/v1/status", timeout=5, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False
