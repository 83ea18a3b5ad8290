"""The deployment files: the image builds and the compose file's four organisations form a network and commit.

Where no docker daemon answers (none installed, or not running, or no right to
its socket) the test is skipped and says which.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
PORTS = (26601, 26602, 26603, 26604)


def docker(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def require_docker() -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed on this machine: the image and the compose network were not tried")
    info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        pytest.skip(f"no docker daemon answers here ({reason}): the image and the compose network were not tried")


def test_the_image_builds_and_the_compose_network_of_four_organisations_commits() -> None:
    require_docker()
    built = docker("build", "-f", "deploy/Dockerfile", "-t", "oms-ledger", ".")
    assert built.returncode == 0, built.stderr[-3000:]
    assert "omsnode" in docker("run", "--rm", "oms-ledger", "--version").stdout
    up = docker("compose", "-f", str(COMPOSE), "up", "-d")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        deadline = time.monotonic() + 300
        heights: list[int] = []
        while time.monotonic() < deadline:
            try:
                rows = [httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5).json() for port in PORTS]
                heights = [row["height"] for row in rows]
                if all(row["voting"] for row in rows) and len({row["chain_id"] for row in rows}) == 1:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(2)
        else:
            logs = docker("compose", "-f", str(COMPOSE), "logs", "--tail", "50").stdout
            raise AssertionError(f"the compose network did not come up (heights {heights}):\n{logs[-5000:]}")
        peers = httpx.get(f"http://127.0.0.1:{PORTS[0]}/v1/peers", timeout=5).json()
        assert {peer["id"] for peer in peers} == {"warehouse-node", "stores-node", "partner-node"}
        in_retail = ("compose", "-f", str(COMPOSE), "exec", "-T", "retail", "omsnode")
        token = docker(*in_retail, "token", "create", "--home", "/net/retail", "--identity", "ops", "--scopes", "all")
        assert token.returncode == 0, token.stderr
        sku = '{"sku": "DOCKER-1", "price": 1, "currency": "EUR", "tax_class": "standard"}'
        sent = docker(
            *in_retail, "tx", "send", "sku.upsert", "--home", "/net/retail", "--as", "ops", "--keys", "/net/keys",
            "--payload", sku, "--wait", "--token", token.stdout.strip(),
        )  # fmt: skip
        assert sent.returncode == 0 and ": committed" in sent.stdout, sent.stdout + sent.stderr
    finally:
        docker("compose", "-f", str(COMPOSE), "down", "-v", timeout=300)
