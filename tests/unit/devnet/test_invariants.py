"""The checker's comparisons on made-up answers: each finds the violation it is for, and only that."""

from __future__ import annotations

from devnet.chaos.invariants import check_no_fork, check_one_state

STATUS = {"height": 5, "head_hash": "aa" * 32, "state_root": "bb" * 32}


def test_one_head_and_state_commitment_passes_and_any_difference_is_named() -> None:
    assert check_one_state([STATUS, dict(STATUS)]) == []
    other_root = {**STATUS, "state_root": "cc" * 32}
    assert check_one_state([STATUS, other_root]) != []
    behind = {**STATUS, "height": 4}
    (problem,) = check_one_state([STATUS, behind])
    assert "node 1: height 4" in problem


def test_a_fork_is_found_at_its_height_and_a_node_without_that_height_is_left_out() -> None:
    same = {1: ("h1", ["t1"]), 2: ("h2", ["t2"])}
    assert check_no_fork([same, dict(same), {2: ("h2", ["t2"])}]) == []
    forked = {1: ("h1", ["t1"]), 2: ("x2", ["t3"])}
    assert check_no_fork([same, forked]) == ["fork: 2 different blocks at height 2"]
