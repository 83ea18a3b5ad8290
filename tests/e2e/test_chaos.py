"""Fault scenarios on one 4-node devnet of real processes, short versions (`make chaos` plays the long ones).

Every scenario runs order load, injects its fault, heals, and the checker
reads every node's API: no fork, nothing acknowledged lost, stock adding up,
one state, every honest node voting again. The scenarios share the devnet (a
scenario leaves it healed); the last one goes through `omsnode devnet chaos`,
which also runs `verify-chain` on every node's data. The checker itself is
shown to catch an acknowledged tx that is not where its node said.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from cli.main import main
from devnet.chaos.invariants import check_invariants
from devnet.chaos.load import Ack, OrderLoad
from devnet.chaos.runner import ScenarioResult, run_scenario
from devnet.network import Devnet

pytestmark = [pytest.mark.e2e]

SHORT_S = 2.0
"""How long each fault lasts here."""

RATE = 8.0
"""Orders offered a second: few, so the checker reads each of them from every node in seconds."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet.create(tmp_path_factory.mktemp("chaos") / "net", 4, test_faults=True)
    devnet.start_all()
    devnet.wait_until_up()
    yield devnet
    devnet.stop_all()


def play(net: Devnet, name: str, seconds: float = SHORT_S, seed: int = 1) -> ScenarioResult:
    result = run_scenario(net, name, seed, seconds, verify=False, rate=RATE, say=print)
    print(result.to_json())
    assert result.ok, result.problems
    assert result.orders_acknowledged > 0 and result.resume_s is not None
    return result


def test_a_killed_replica_leaves_three_that_keep_committing(net: Devnet) -> None:
    result = play(net, "kill-replica")
    assert result.commits_during_fault is not None and result.commits_during_fault > 0


def test_the_checker_finds_an_acknowledged_tx_that_is_not_where_its_node_said(net: Devnet) -> None:
    load = OrderLoad(net, "checker", RATE)
    with net.client(0) as client:
        block = client.get(f"/v1/blocks/{client.status()['height']}")
    txid = block["txs"][0]["id"]
    load.acks[txid] = Ack(0, "committed", block["height"] + 1, 0, None)
    problems = check_invariants(net, load, since=block["height"], verify=False)
    assert any(txid[:12] in problem and "is in the chain at" in problem for problem in problems), problems
    load.acks[txid] = replace(load.acks[txid], height=block["height"], status="rejected")
    problems = check_invariants(net, load, since=block["height"], verify=False)
    assert any(f"reports tx {txid[:12]} committed" in problem for problem in problems), problems


def test_the_command_plays_a_scenario_checks_every_chain_and_prints_the_figures_as_json(
    net: Devnet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["devnet", "chaos", "--dir", str(net.root), "--scenario", "kill-primary", "--seconds", "2", "--json"]
    code = main(args)
    net.reload()
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["ok"], result["problems"]
    assert result["scenario"] == "kill-primary" and result["view_changes"] >= 1
