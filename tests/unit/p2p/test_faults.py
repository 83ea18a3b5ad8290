"""The fault layer's control file: what it asks for, what it refuses, and that it is read again on change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.faults import NO_FAULTS, FaultSpec, LinkFaults, parse_spec


class Ticks:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def faults_at(path: Path, spec: dict[str, object]) -> tuple[LinkFaults, Ticks]:
    path.write_text(json.dumps(spec))
    ticks = Ticks()
    return LinkFaults(path, ticks), ticks


def test_a_cut_link_sends_nothing_and_the_others_everything(tmp_path: Path) -> None:
    faults, _ = faults_at(tmp_path / "f.json", {"cut": ["node-1"]})
    assert faults.plan("node-1", [b"a", b"b"]) == ([], 0.0) and faults.is_cut("node-1")
    assert faults.plan("node-2", [b"a", b"b"]) == ([b"a", b"b"], 0.0) and not faults.is_cut("node-2")


def test_certain_drops_duplicates_and_delays(tmp_path: Path) -> None:
    faults, _ = faults_at(tmp_path / "f.json", {"duplicate": 1.0, "delay": 1.0, "delay_ms": 250})
    assert faults.plan("node-2", [b"a", b"b"]) == ([b"a", b"a", b"b", b"b"], 0.25)
    faults, _ = faults_at(tmp_path / "g.json", {"drop": 1.0})
    assert faults.plan("node-2", [b"a", b"b"]) == ([], 0.0)


def test_the_same_seed_drops_the_same_envelopes(tmp_path: Path) -> None:
    batch = [bytes([i]) for i in range(200)]
    first, _ = faults_at(tmp_path / "a.json", {"drop": 0.3, "seed": 5})
    second, _ = faults_at(tmp_path / "b.json", {"drop": 0.3, "seed": 5})
    kept = first.plan("p", batch)[0]
    assert kept == second.plan("p", batch)[0] and 100 < len(kept) < 180


def test_the_file_is_read_again_once_changed_and_its_removal_ends_the_faults(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    faults, ticks = faults_at(path, {"cut": ["node-1"]})
    assert faults.is_cut("node-1")
    path.write_text(json.dumps({"cut": ["node-2"], "drop": 0.5, "disk_full": True}))
    ticks.now += 1.0
    assert faults.spec == FaultSpec(frozenset({"node-2"}), drop=0.5, disk_full=True) and faults.is_disk_full()
    path.unlink()
    ticks.now += 1.0
    assert faults.spec == NO_FAULTS


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"cut": "node-1"}',
        '{"drop": 1.5}',
        '{"drop": true}',
        '{"delay_ms": -1}',
        '{"delay_ms": 3600000}',
        '{"seed": "x"}',
        '{"disk_full": 1}',
        '{"partition": []}',
        "{",
    ],
)
def test_a_file_out_of_range_is_refused_and_obeyed_as_no_faults(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError):
        parse_spec(text)
    path = tmp_path / "f.json"
    path.write_text(text)
    assert LinkFaults(path).spec == NO_FAULTS


@given(st.binary(max_size=200))
def test_any_bytes_give_a_spec_or_a_value_error(data: bytes) -> None:
    try:
        spec = parse_spec(data.decode(errors="replace"))
    except ValueError:
        return
    assert all(0.0 <= chance <= 1.0 for chance in (spec.drop, spec.duplicate, spec.delay))
