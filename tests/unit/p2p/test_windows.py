"""The envelope replay windows kept on disk: a restarted gate refuses what it accepted before."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ledger.encoding import encode
from p2p.envelope import EnvelopeGate, seal
from p2p.errors import Dropped
from p2p.windows import WindowStore
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis


def envelope(sender: str, seq: int) -> bytes:
    return seal(
        NET.keys[sender], sender=sender, recipient="node-0", chain_id=GENESIS.chain_id, seq=seq, kind="txs", body=b""
    )


def restarted(path: Path) -> EnvelopeGate:
    """A new gate of `node-0` with the windows the file holds."""
    gate = EnvelopeGate(GENESIS, "node-0")
    WindowStore(path, gate).load()
    return gate


def test_what_was_accepted_before_a_restart_is_refused_after_it(tmp_path: Path) -> None:
    path = tmp_path / "windows"
    gate = EnvelopeGate(GENESIS, "node-0")
    store = WindowStore(path, gate)
    store.load()
    old = [envelope("node-1", 100), envelope("node-2", 7)]
    for data in old:
        gate.open(data)
    store.save()
    gate.open(envelope("node-1", 101))
    store.save()
    after = restarted(path)
    for data in [*old, envelope("node-1", 101)]:
        with pytest.raises(Dropped, match="replay"):
            after.open(data)
    assert after.open(envelope("node-1", 102)).seq == 102


def test_the_file_is_written_only_when_the_windows_moved_and_stays_one_number_per_validator(tmp_path: Path) -> None:
    path = tmp_path / "windows"
    gate = EnvelopeGate(GENESIS, "node-0")
    store = WindowStore(path, gate)
    store.save()
    assert not path.exists(), "nothing accepted, nothing to write"
    for seq in range(1000):
        gate.open(envelope("node-3", seq))
    store.save()
    written = path.stat().st_mtime_ns
    store.save()
    assert path.stat().st_mtime_ns == written
    assert path.read_bytes() == encode({"node-3": 999})


@pytest.mark.parametrize("content", [b"\xc1junk", encode([1, 2]), encode({"node-1": "high"})])
def test_a_file_that_does_not_read_back_is_set_aside_and_the_node_starts(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "windows"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        gate = restarted(path)
    assert gate.get_highest() == {} and "starting without them" in caplog.text
    assert gate.open(envelope("node-1", 1)).seq == 1
