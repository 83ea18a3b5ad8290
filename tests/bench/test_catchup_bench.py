"""Benchmark: how fast a node catches up, through real node processes over HTTP.

Run with `make bench`. Three figures are printed; only correctness is asserted
(the caught-up node reports the same head hash and state root as the others).

1. Block sync with re-execution: a 4-node devnet commits about a thousand
   blocks of a few order txs each while node 3 is down; node 3 is wiped and
   started with `--no-state-sync`, so it fetches every block over HTTP,
   verifies its certificate, re-executes it and commits it to LevelDB.
2. State sync of a million orders: such a state would take too long to build
   through consensus, so it is built offline with the real code. A world state
   of 1,000,000 order entries, a block at a checkpoint height whose header
   commits to it, and a certificate signed by a quorum of the devnet's own
   validator keys are loaded into the stores of nodes 0..2, exactly as a node
   loads a state it synced (`Store.load_state`). Those nodes start and offer
   it as their snapshot; node 3 starts empty with `--state-sync`.
3. A node that missed 100,000 orders (`OMS_BENCH_MISSED_ORDERS`): node 3 is
   killed and the other three commit them as `order.import` txs of 100
   orders, blocks of at most 10 such txs. Node 3 is started again with its
   store, and block-syncs every block it missed; then it is wiped and started
   with `--state-sync`, and loads the snapshot of the last checkpoint, then
   block-syncs the blocks after it. Each is timed from process start until
   the node reports the others' height, head and state root; its CPU time
   is read from start and from its first answer (after its imports and
   opening its store) to then. A "tx" in these figures is one import
   of 100 orders: both txs/s and orders/s are printed.

4. The application path alone, in one process: blocks of orders built
   through the node's executor on one store are caught up into a fresh one
   by `CatchUp` over the memory network (decode, verify, re-execute, derive,
   commit to LevelDB), once as catch-up commits them (each block's batch
   unsynced, the run synced at its end) and once with every block synced as
   consensus commits it; CPU and wall time of each.

Set `OMS_BASKETS` to an Olist-style `order_items.csv` to replay real baskets
in the first part.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devnet.baskets import Basket, read_olist_baskets, synthetic_baskets
from devnet.bench import read_cpu_seconds
from devnet.load import CHANNEL, make_order_payloads, make_orders, prepare_stock
from devnet.network import Devnet
from ledger.block import Block, CommitCertificate, genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import decode, encode
from ledger.genesis import ConsensusParams
from ledger.keys import PrivateKey
from ledger.store import Head, Store
from node.catchup import CatchUp
from node.config import DATA_DIR, KEY_FILE, NodeConfig
from node.executor import Executor
from p2p.memory import MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.sync import BlockSync
from tests.helpers.builders import Network
from tests.helpers.chain import certify, make_block
from tests.helpers.contracts import get_contracts, make_oms_network
from tests.helpers.devnet import node_process, sealed_read, status, wait_converged, wait_for, wipe
from tests.helpers.executed import ExecutedLedger
from tests.helpers.order_ledger import HOUR_MS, order_tx, setup_txs

pytestmark = pytest.mark.bench

CHECKPOINT_INTERVAL = 50
BLOCK_TXS = 5
"""Most txs per block in the block sync part: small, so that there are many blocks."""

ORDERS = int(os.environ.get("OMS_BENCH_CATCHUP_ORDERS", "5000"))
"""Orders committed while node 3 is down (about ORDERS / BLOCK_TXS blocks, plus the stocking ones)."""

STATE_ORDERS = 1_000_000
SNAPSHOT_HEIGHT = 100 * CHECKPOINT_INTERVAL
"""Height of the certified block whose state the million-order snapshot is."""

MISSED_ORDERS = int(os.environ.get("OMS_BENCH_MISSED_ORDERS", "100000"))
"""Orders committed while node 3 is down, in the third part."""

IMPORT_ORDERS = 100
"""Orders in one `order.import` tx (the most one may carry)."""

IMPORT_BLOCK_TXS = 10
"""Most `order.import` txs per block: 1,000 orders."""

LAGGARD = 3
LOG = "catchup.log"
"""Where the catching-up node's output goes (in its home), read back for its own timings."""


def wait_for_head(url: str, process: subprocess.Popen[bytes], height: int, head_hash: str, timeout: float) -> float:
    """Poll the node's status until it reports `head_hash` at `height`; returns when it first answered."""
    deadline = time.monotonic() + timeout
    answered = 0.0
    while True:
        row = status(url)
        if row is not None:
            answered = answered or time.perf_counter()
            if row["height"] == height and row["head_hash"] == head_hash:
                return answered
        if process.poll() is not None:
            raise AssertionError(f"node exited with {process.returncode} before reaching height {height}")
        if time.monotonic() > deadline:
            raise AssertionError(f"node did not reach height {height} with head {head_hash} in {timeout} s: {row}")
        time.sleep(0.05)


def bench_baskets(count: int) -> tuple[list[Basket], str]:
    path = os.environ.get("OMS_BASKETS")
    if path:
        chosen = read_olist_baskets(Path(path))[:count]
        return chosen, "olist baskets"
    return list(synthetic_baskets(count)), "synthetic baskets"


def commit_orders(devnet: Devnet, live: list[int], baskets: list[Basket]) -> tuple[int, str]:
    """Stock the baskets' SKUs, send one order per basket over the live nodes, wait until they are idle;
    returns their height and head hash."""
    clients = [devnet.client(i, timeout=60) for i in live]
    try:
        keyring = devnet.keyring(clients[0])
        tag = f"{time.time_ns() % 10**9:09d}"
        prepare_stock(clients[0], keyring, devnet, baskets)
        txs = make_orders(keyring.sign, baskets, tag)
        chunks = [txs[start : start + 250] for start in range(0, len(txs), 250)]
        last_ids = [clients[n % len(clients)].submit_many(chunk)[-1]["tx_id"] for n, chunk in enumerate(chunks)]
        for tx_id in last_ids:
            clients[0].wait_tx(tx_id, timeout=600)

        def idle() -> bool:
            rows = [client.status() for client in clients]
            return all(r["mempool"] == 0 for r in rows) and len({r["head_hash"] for r in rows}) == 1

        wait_for(idle, 600, "the live nodes to empty their mempools and agree on one head")
        head = clients[0].status()
        return head["height"], head["head_hash"]
    finally:
        for client in clients:
            client.close()


def count_txs(devnet: Devnet, index: int, height: int) -> int:
    client = devnet.client(index)
    try:
        return sum(len(client.get(f"/v1/blocks/{h}")["txs"]) for h in range(1, height + 1))
    finally:
        client.close()


def node_sync_seconds(devnet: Devnet, index: int) -> float:
    """Seconds the node's own block sync reported in its log (its runs summed)."""
    text = (devnet.nodes[index].home / LOG).read_text(errors="replace")
    return sum(float(s) for s in re.findall(r"block sync: \d+ blocks \(\d+ txs\) up to height \d+ in ([\d.]+) s", text))


def test_block_sync_catch_up_with_re_execution(tmp_path: Path) -> None:
    params = ConsensusParams(checkpoint_interval=CHECKPOINT_INTERVAL, max_block_txs=BLOCK_TXS)
    devnet = Devnet.create(tmp_path / "net", 4, params)
    live = [i for i in range(4) if i != LAGGARD]
    try:
        devnet.start_all()
        devnet.wait_until_up()
        devnet.kill(LAGGARD)
        baskets, source = bench_baskets(ORDERS)
        loaded = time.perf_counter()
        height, head_hash = commit_orders(devnet, live, baskets)
        load_seconds = time.perf_counter() - loaded
        wipe(devnet, LAGGARD)
        url = devnet.nodes[LAGGARD].url
        with node_process(devnet, LAGGARD, "--no-state-sync", log=LOG) as process:
            started = time.perf_counter()
            answered = wait_for_head(url, process, height, head_hash, timeout=600)
            seconds = time.perf_counter() - started
            wait_converged(devnet, height)
            caught_up = status(url)
            assert caught_up is not None and caught_up["base_height"] == 1
            txs = count_txs(devnet, LAGGARD, height)
    finally:
        devnet.stop_all()
    own = node_sync_seconds(devnet, LAGGARD)
    print(
        f"\n{len(baskets)} orders ({source}) committed by 3 of 4 nodes in {height} blocks of at most {BLOCK_TXS} txs "
        f"in {load_seconds:.1f} s"
    )
    print(
        f"block sync catch-up through a node (fetch over HTTP, verify certificates, re-execute, commit to LevelDB): "
        f"{height} blocks, {txs} txs in {seconds:.1f} s from process start = {height / seconds:,.0f} blocks/s, "
        f"{txs / seconds:,.0f} txs/s (first answer after {answered - started:.1f} s; "
        f"the node's own sync timer: {own:.1f} s = {height / own if own else 0:,.0f} blocks/s)"
    )


def order_state(count: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """`count` order-like state entries in key order, and their state root."""
    entries = []
    for i in range(count):
        key = f"order/A-{i:08d}".encode()
        value = encode({"channel": "channel-1", "lines": [[f"SKU-{i % 500}", 1 + i % 3]], "status": "placed"})
        entries.append((key, value))
    return entries, compute_commitment(entries)


def validators_of(devnet: Devnet) -> Network:
    """The devnet's genesis with every validator's key, read from the node homes."""
    keys = {NodeConfig.load(node.home).node_id: PrivateKey.load(node.home / KEY_FILE) for node in devnet.nodes}
    return Network(devnet.genesis, keys)


def test_state_sync_of_a_million_orders(tmp_path: Path) -> None:
    devnet = Devnet.create(tmp_path / "net", 4, ConsensusParams(checkpoint_interval=CHECKPOINT_INTERVAL))
    network = validators_of(devnet)
    genesis = devnet.genesis
    built = time.perf_counter()
    entries, root = order_state(STATE_ORDERS)
    timestamp = genesis.genesis_time_ms + SNAPSHOT_HEIGHT
    block = make_block(network, SNAPSHOT_HEIGHT, genesis_hash(genesis), [], [], root, timestamp)
    head = Head(SNAPSHOT_HEIGHT, block.hash(), block.header.state_root, timestamp)
    certificate = certify(network, block)
    build_seconds = time.perf_counter() - built
    installed = time.perf_counter()
    serving = [i for i in range(4) if i != LAGGARD]
    for i in serving:
        store = Store(devnet.nodes[i].home / DATA_DIR)
        try:
            store.load_state(iter(entries), head, block, certificate)
        finally:
            store.close()
    install_seconds = time.perf_counter() - installed
    del entries
    state_root = block.header.state_root.hex()
    url = devnet.nodes[LAGGARD].url
    try:
        for i in serving:
            devnet.start(i)
        devnet.wait_until_up(serving)
        offered = time.perf_counter()
        for i in serving:
            response = sealed_read(devnet, LAGGARD, i, "/p2p/snapshot", timeout=120)
            assert response.status_code == 200, f"node {i} offers no snapshot: {response.status_code}"
            manifest = decode(response.content)
            assert (manifest["height"], manifest["entries"]) == (SNAPSHOT_HEIGHT, STATE_ORDERS)
        offer_seconds = time.perf_counter() - offered
        with node_process(devnet, LAGGARD, "--state-sync", log=LOG) as process:
            started = time.perf_counter()
            answered = wait_for_head(url, process, SNAPSHOT_HEIGHT, block.hash().hex(), timeout=600)
            seconds = time.perf_counter() - started
            synced = status(url)
            assert synced is not None and synced["state_root"] == state_root
            assert synced["base_height"] == SNAPSHOT_HEIGHT
            wait_converged(devnet, SNAPSHOT_HEIGHT)
    finally:
        devnet.stop_all()
    log = (devnet.nodes[LAGGARD].home / LOG).read_text(errors="replace")
    assert "state sync: loaded" in log, log[-2000:]
    print(
        f"\n{STATE_ORDERS:,} order entries and their certified block at height {SNAPSHOT_HEIGHT} built in "
        f"{build_seconds:.1f} s, loaded into {len(serving)} stores in {install_seconds:.1f} s; "
        f"the 3 nodes built their offers in {offer_seconds:.1f} s"
    )
    print(
        f"state sync of {STATE_ORDERS:,} orders through a node (HTTP chunks, verified against the certified "
        f"commitment, loaded into LevelDB): {seconds:.1f} s from process start = {STATE_ORDERS / seconds:,.0f} "
        f"entries/s (first answer after {answered - started:.1f} s)"
    )


def import_orders(devnet: Devnet, live: list[int], baskets: list[Basket]) -> dict[str, object]:
    """Commit one order per basket through the `live` nodes, `IMPORT_ORDERS` to an `order.import` tx, and wait
    until they are idle on one head; returns that head's status."""
    clients = [devnet.client(i, timeout=120) for i in live]
    try:
        keyring = devnet.keyring(clients[0])
        payloads = make_order_payloads(baskets, f"{time.time_ns() % 10**9:09d}")
        groups = [payloads[start : start + IMPORT_ORDERS] for start in range(0, len(payloads), IMPORT_ORDERS)]
        txs = [keyring.sign(CHANNEL, "order.import", {"orders": group}) for group in groups]
        verdicts = []
        for n, start in enumerate(range(0, len(txs), IMPORT_BLOCK_TXS)):
            verdicts = clients[n % len(clients)].submit_many(txs[start : start + IMPORT_BLOCK_TXS])
            refused = [verdict for verdict in verdicts if not verdict["accepted"]]
            assert not refused, refused[:1]
        receipt = clients[0].wait_tx(verdicts[-1]["tx_id"], timeout=1800)
        assert receipt["status"] == "committed", receipt

        def idle() -> bool:
            rows = [client.status() for client in clients]
            return all(r["mempool"] == 0 for r in rows) and len({r["head_hash"] for r in rows}) == 1

        wait_for(idle, 1800, "the live nodes to empty their mempools and agree on one head")
        head: dict[str, object] = clients[0].status()
        return head
    finally:
        for client in clients:
            client.close()


def catch_up(devnet: Devnet, head: dict[str, object], *flags: str) -> tuple[float, float, float]:
    """Start the laggard with `flags` until it reports `head`'s height, hash and state root; returns the wall
    seconds from process start, and its process's CPU seconds from start and from its first answer."""
    url = devnet.nodes[LAGGARD].url
    with node_process(devnet, LAGGARD, *flags, log=LOG) as process:
        started = time.perf_counter()
        while status(url) is None:
            assert process.poll() is None, f"node exited with {process.returncode}"
            time.sleep(0.05)
        cpu_up = read_cpu_seconds(process.pid) or 0.0
        wait_for_head(url, process, int(str(head["height"])), str(head["head_hash"]), timeout=3600)
        seconds = time.perf_counter() - started
        cpu = read_cpu_seconds(process.pid) or 0.0
        caught_up = status(url)
        assert caught_up is not None and caught_up["state_root"] == head["state_root"]
    return seconds, cpu, cpu - cpu_up


@pytest.mark.timeout(7200)
def test_catch_up_of_a_node_that_missed_orders(tmp_path: Path) -> None:
    params = ConsensusParams(checkpoint_interval=CHECKPOINT_INTERVAL, max_block_txs=IMPORT_BLOCK_TXS)
    devnet = Devnet.create(tmp_path / "net", 4, params)
    live = [i for i in range(4) if i != LAGGARD]
    baskets = list(synthetic_baskets(MISSED_ORDERS))
    txs = -(-MISSED_ORDERS // IMPORT_ORDERS)
    try:
        devnet.start_all()
        devnet.wait_until_up()
        with devnet.client(0, timeout=120) as client:
            prepare_stock(client, devnet.keyring(client), devnet, baskets)
            before = client.status()["height"]
        wait_converged(devnet, before, timeout=600)
        devnet.kill(LAGGARD)
        loaded = time.perf_counter()
        head = import_orders(devnet, live, baskets)
        load_seconds = time.perf_counter() - loaded
        by_blocks = catch_up(devnet, head, "--no-state-sync")
        wipe(devnet, LAGGARD)
        by_state = catch_up(devnet, head, "--state-sync")
    finally:
        devnet.stop_all()
    log = (devnet.nodes[LAGGARD].home / LOG).read_text(errors="replace")
    assert "state sync: loaded" in log, log[-2000:]
    missed = int(str(head["height"])) - before
    print(
        f"\n{MISSED_ORDERS:,} orders in {txs:,} order.import txs committed by 3 of 4 nodes in {missed} blocks "
        f"(heights {before + 1}-{head['height']}) in {load_seconds:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    for how, (seconds, cpu, catching_cpu) in (
        ("block sync of the blocks it missed", by_blocks),
        ("state sync of the last checkpoint's snapshot, then block sync (store wiped)", by_state),
    ):
        print(
            f"catch-up by {how}: {seconds:.1f} s from process start = {txs / seconds:,.1f} txs/s, "
            f"{MISSED_ORDERS / seconds:,.0f} orders/s; the node's CPU {cpu:.1f} s from start, "
            f"{catching_cpu:.1f} s from its first answer = {txs / catching_cpu:,.1f} txs and "
            f"{MISSED_ORDERS / catching_cpu:,.0f} orders per CPU second"
        )


APPLIED_ORDERS = 2_000
"""Orders in each chain of the fourth part."""


def build_chain(path: Path, per_tx: int, txs_per_block: int) -> ExecutedLedger:
    """The catalogue and stock, then `APPLIED_ORDERS` orders, `per_tx` to a tx (1: `order.create`, more:
    `order.import`), `txs_per_block` txs a block, committed through the node's executor."""
    ledger = ExecutedLedger(path)
    ledger.commit_block(setup_txs(), HOUR_MS)
    payloads = [order_tx(i)[2] for i in range(APPLIED_ORDERS)]
    if per_tx == 1:
        txs = [("channel-1", "order.create", payload) for payload in payloads]
    else:
        txs = [
            ("channel-1", "order.import", {"orders": payloads[i : i + per_tx]}) for i in range(0, len(payloads), per_tx)
        ]
    for start in range(0, len(txs), txs_per_block):
        assert all(receipt.ok for receipt in ledger.commit_block(txs[start : start + txs_per_block]))
    return ledger


def apply_chain(served: Store, path: Path, every_block_synced: bool) -> tuple[float, float]:
    """Catch a fresh store at `path` up to `served`; returns CPU and wall seconds."""
    store = Store(path)
    genesis = make_oms_network().genesis
    executor = Executor(store, get_contracts(), genesis)
    source = MemorySyncSource(MemoryNetwork(genesis), "node-1")
    source.chains["node-0"] = served
    peers = PeerTable.from_genesis(genesis, "node-1")

    def commit_synced(block: Block, certificate: CommitCertificate) -> None:
        executor.commit(block, certificate)

    def make_sync(apply: Callable[[Block, CommitCertificate], None]) -> BlockSync:
        hook = commit_synced if every_block_synced else apply
        return BlockSync(genesis, source, peers, hook, validators=executor.get_validators)

    catch_up = CatchUp(executor, make_sync, lambda block, receipts: None, lambda: None, state_sync_mode=False)
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(catch_up.catch_up_once(stalled=True))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert store.head() == served.head()
    store.close()
    return cpu, wall


@pytest.mark.parametrize(("per_tx", "txs_per_block"), [(1, 5), (100, 10)])
def test_block_application_path(tmp_path: Path, per_tx: int, txs_per_block: int) -> None:
    ledger = build_chain(tmp_path / "peer", per_tx, txs_per_block)
    blocks = ledger.store.height
    txs = -(-APPLIED_ORDERS // per_tx)
    try:
        runs = [(synced, apply_chain(ledger.store, tmp_path / f"node-{synced}", synced)) for synced in (True, False)]
    finally:
        ledger.close()
    kind = "order.create" if per_tx == 1 else f"order.import of {per_tx}"
    print(
        f"\n{APPLIED_ORDERS:,} orders in {txs:,} txs ({kind}) in {blocks} blocks; load average {os.getloadavg()[0]:.1f}"
    )
    for synced, (cpu, wall) in runs:
        how = "every block synced (as consensus commits)" if synced else "blocks unsynced, the run synced at its end"
        print(
            f"catch-up, {how}: CPU {cpu:.2f} s = {txs / cpu:,.0f} txs/s, {APPLIED_ORDERS / cpu:,.0f} orders/s; "
            f"wall {wall:.2f} s = {txs / wall:,.0f} txs/s, {APPLIED_ORDERS / wall:,.0f} orders/s"
        )
