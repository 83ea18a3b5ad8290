"""Dishonest validators: Twins, two processes that hold one validator's key.

`twins` copies a replica's whole home (key, data, consensus log) to a second
folder with a port of its own and runs both for `seconds`: the network now
has a validator that may sign two different things for one height and view
(each twin knows only its own consensus log), and that announces two
addresses. The other three must commit no fork and stay live.
`byzantine-primary` does the same to the primary: both processes propose,
each its own batch, so replicas receive different proposals for one height
and view from the one primary (an equivocating primary), and must agree on
one block or change view.

Then the twin is stopped and its folder removed, and the validator's own
process is restarted: the twin, booted later, announced a newer address
record (its port) and sealed its envelopes with higher sequence numbers, so
until the validator boots again its peers send to the dead twin and drop
what it sends as replays; a fresh boot gives it newer ones of both. The
validator is not counted as honest: the checker does not ask it to have
voted again.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from dataclasses import replace

import httpx

from devnet.chaos.stage import ScenarioError, Stage, wait_until
from devnet.network import free_ports
from node.config import NodeConfig

TWIN_UP_S = 120.0
"""How long the twin has to come up."""


def twins(stage: Stage) -> None:
    """Run a second process with a replica's key for `seconds`."""
    run_twin(stage, stage.replica())


def byzantine_primary(stage: Stage) -> None:
    """Run a second process with the primary's key for `seconds`: two proposals for each height."""
    run_twin(stage, stage.primary())


def run_twin(stage: Stage, victim: int) -> None:
    """Run a copy of node `victim` beside it for `seconds`."""
    node = stage.devnet.node(victim)
    twin_home = stage.devnet.root / f"twin-of-{victim}"
    stage.fault(f"run a twin of node {victim} with its key, data and consensus log")
    stage.dishonest.add(victim)
    stage.devnet.stop(victim)
    shutil.rmtree(twin_home, ignore_errors=True)
    shutil.copytree(node.home, twin_home)
    (port,) = free_ports(1)
    config = NodeConfig.load(twin_home)
    replace(config, port=port, advertise="").save(twin_home)
    stage.start(victim)
    with open(twin_home / "node.log", "ab") as log:
        twin = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "start", "--home", str(twin_home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/v1/status"
        wait_until(lambda: twin.poll() is not None or answers(url), TWIN_UP_S, f"the twin of node {victim}")
        if twin.poll() is not None:
            raise ScenarioError(f"the twin of node {victim} exited: {(twin_home / 'node.log').read_text()[-600:]}")
        stage.pause(stage.seconds)
    finally:
        twin.send_signal(signal.SIGKILL)
        twin.wait(30)
        shutil.rmtree(twin_home, ignore_errors=True)
    stage.devnet.stop(victim)
    stage.start(victim)
    stage.heal(f"stopped the twin of node {victim} and restarted node {victim}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
