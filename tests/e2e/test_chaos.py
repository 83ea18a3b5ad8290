"""Fault scenarios on one 4-node devnet of real processes, short versions (`make chaos` plays the long ones).

Every scenario runs order load, injects its fault, heals, and the checker
reads every node's API: no fork, nothing acknowledged lost, stock adding up,
one state, every honest node voting again. The scenarios share the devnet (a
scenario leaves it healed); the last one goes through `omsnode devnet chaos`,
which also runs `verify-chain` on every node's data. The checker itself is
shown to catch an acknowledged tx that is not where its node said. The
validator set changed by governance (`reconfigure`) comes last: it leaves the
devnet four voting validators, one of them a node that was not in genesis.
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

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


def test_a_replica_and_then_the_primary_frozen_by_sigstop_vote_again_once_continued(net: Devnet) -> None:
    play(net, "pause")


def test_a_replica_frozen_through_the_view_change_after_the_primary_was_killed_votes_again(net: Devnet) -> None:
    result = play(net, "stop-and-kill")
    assert result.view_changes is not None and result.view_changes >= 1


def test_every_node_killed_at_once_starts_again_and_loses_nothing_acknowledged(net: Devnet) -> None:
    play(net, "restart-all")


def test_a_node_with_its_clock_minutes_off_leaves_the_others_committing_and_votes_once_right(net: Devnet) -> None:
    result = play(net, "clock-skew")
    assert result.commits_during_fault is not None and result.commits_during_fault > 0


def test_malformed_and_forged_traffic_is_refused_while_the_network_commits(net: Devnet) -> None:
    result = play(net, "junk")
    assert "refused" in result.notes[-1]


def test_a_node_cut_off_then_a_2_2_split_with_no_commits_then_healed(net: Devnet) -> None:
    """Twelve seconds a phase: when the node cut off is the primary, the three replace it only after a tx's second
    timeout (the censorship watch forwards on the first), about two view timers."""
    result = play(net, "partition", seconds=12.0)
    assert result.commits_during_fault is not None and result.commits_during_fault > 0, "three of four went on"


def test_links_that_drop_delay_and_duplicate_leave_the_network_committing(net: Devnet) -> None:
    result = play(net, "lossy")
    assert result.commits_during_fault is not None and result.commits_during_fault > 0


def test_a_node_started_empty_after_the_others_went_on_catches_up_and_votes(net: Devnet) -> None:
    play(net, "lagging-joiner", seconds=5.0)


def test_a_node_whose_disk_fills_halts_loudly_and_votes_again_once_freed_and_restarted(net: Devnet) -> None:
    result = play(net, "disk-full")
    assert any("halted" in note and "No space left" in note for note in result.notes), result.notes


def test_a_consensus_log_cut_or_flipped_mid_record_is_recovered_or_refused_then_repaired(net: Devnet) -> None:
    for seed in (1, 2):
        result = play(net, "corrupt-wal", seed=seed)
        assert "refused to start" in " ".join(result.notes) or "recovered" in result.notes[-1]


def test_twins_of_the_primary_proposing_two_blocks_commit_no_fork_and_stay_live(net: Devnet) -> None:
    """Twins of a replica (`twins`) differ only in the victim; `make chaos` plays both."""
    result = play(net, "byzantine-primary")
    assert result.commits_during_fault is not None and result.commits_during_fault > 0


def test_a_seeded_mix_of_faults(net: Devnet) -> None:
    result = play(net, "random", seed=7)
    assert result.notes[0].startswith("playing ")


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
    assert result["scenario"] == "kill-primary" and result["problems"] == []
    assert {"commits_during_fault", "resume_s", "view_changes"} <= result.keys()


def test_reconfigure_adds_a_validator_and_removes_another_by_governance_during_load_leaving_four_voting(
    net: Devnet,
) -> None:
    before = {net.status(node.index)["node_id"] for node in net.nodes}
    play(net, "reconfigure")
    rows = [net.status(node.index) for node in net.nodes]
    after = {row["node_id"] for row in rows}
    assert len(after - before) == 1 and len(before - after) == 1, (before, after)
    assert all(row["voting"] for row in rows), rows
    with net.client(0) as client:
        assert set(client.status()["validators"]) == after
    assert Devnet(net.root).nodes == net.nodes, "the devnet's folder names the newcomer in its place"
