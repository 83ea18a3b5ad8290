"""The LevelDB store: reads after commit, certificates, and atomicity under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.block import genesis_hash, verify_certificate
from ledger.commitment import compute_commitment
from ledger.errors import InvalidCertificate
from ledger.store import Store
from tests.helpers.builders import make_network
from tests.helpers.chain import certify, commit_raw_block


def test_commit_and_read_back(tmp_path: Path) -> None:
    network = make_network(4)
    store = Store(tmp_path / "db")
    tx = network.tx("store-1", "stock.receive", {"sku": "A", "qty": 3})
    block = commit_raw_block(store, network, {b"stock/A": b"\x03"}, [tx])
    assert store.height == 1
    assert store.get_block(1) == block
    assert store.get_height_by_hash(block.hash()) == 1
    assert block.header.prev_hash == genesis_hash(network.genesis)
    assert store.get_tx_location(tx.id) == (1, 0)
    assert store.get_receipt(1, 0).tx_id == tx.id
    assert store.get_state(b"stock/A") == b"\x03"
    verify_certificate(store.get_certificate(1), network.genesis, block.hash(), 1)
    store.close()
    reopened = Store(tmp_path / "db")
    assert reopened.head() is not None and reopened.head().block_hash == block.hash()
    assert reopened.state_root() == block.header.state_root == compute_commitment(reopened.iter_state())


def test_out_of_order_commit_is_refused(tmp_path: Path) -> None:
    network = make_network(1)
    store = Store(tmp_path / "db")
    block = commit_raw_block(store, network, {b"k": b"v"}, [])
    with pytest.raises(ValueError, match="cannot commit block 1"):
        store.commit_block(block, certify(network, block), [], {})


def test_certificate_needs_a_quorum_of_good_signatures(tmp_path: Path) -> None:
    network = make_network(4)
    store = Store(tmp_path / "db")
    block = commit_raw_block(store, network, {b"k": b"v"}, [])
    genesis = network.genesis
    with pytest.raises(InvalidCertificate, match="quorum"):
        verify_certificate(certify(network, block, ["node-0", "node-1"]), genesis, block.hash(), 1)
    doubled = certify(network, block, ["node-0", "node-1"])
    doubled = type(doubled)(1, 0, block.hash(), (*doubled.signatures, doubled.signatures[0]))
    with pytest.raises(InvalidCertificate, match="twice"):
        verify_certificate(doubled, genesis, block.hash(), 1)
    good = certify(network, block)
    forged = type(good)(1, 0, block.hash(), ((good.signatures[0][0], bytes(64)), *good.signatures[1:]))
    with pytest.raises(InvalidCertificate, match="bad signature"):
        verify_certificate(forged, genesis, block.hash(), 1)
    with pytest.raises(InvalidCertificate, match="another block"):
        verify_certificate(good, genesis, bytes(32), 1)


WRITER = """
import sys
from ledger.store import Store
from tests.helpers.builders import make_network
from tests.helpers.chain import commit_raw_block
network = make_network(4)
store = Store(sys.argv[1])
while True:
    h = store.height + 1
    writes = {b"k/%d/%d" % (h, i): b"v" * 200 for i in range(300)}
    writes[b"counter"] = str(h).encode()
    txs = [network.tx("store-1", "stock.receive", {"n": h, "i": i}) for i in range(20)]
    commit_raw_block(store, network, writes, txs)
    print(h, flush=True)
"""


def test_sigkill_mid_commit_leaves_no_partial_block(tmp_path: Path) -> None:
    """Kill a committing writer at random instants; every restart finds whole blocks only."""
    rng = random.Random(7)
    db = tmp_path / "db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    last_seen = 0
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first, "writer did not start"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = Store(db)
        head = store.head()
        assert head is not None and head.height >= last_seen
        last_seen = head.height
        assert store.get_block(head.height + 1) is None
        assert store.get_state(b"counter") == str(head.height).encode()
        assert store.get_state(b"k/%d/299" % head.height) is not None
        assert store.get_state(b"k/%d/0" % (head.height + 1)) is None
        assert compute_commitment(store.iter_state()) == head.state_root
        for height in (1, head.height):
            block = store.get_block(height)
            assert block is not None and store.get_certificate(height) is not None
            assert store.get_receipt(height, len(block.txs) - 1) is not None
        store.close()
    assert last_seen >= 3


def test_second_opener_gets_a_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    script = "import sys; from ledger.store import Store; Store(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "db")], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0 and "in use by another process" in result.stderr
    store.close()


def test_the_store_folder_is_opened_by_its_owner_alone(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.mkdir(mode=0o755)
    Store(path).close()
    assert path.stat().st_mode & 0o777 == 0o700
