"""A deterministic simulated network of PBFT replicas in one process.

One seeded random generator decides everything: message delays (so
reordering), drops, duplicates, partitions of any shape, crashes and
restarts, clock skew and drift, and when clients submit txs. Time is
simulated: timers, deliveries and sync transfers are events on one queue, and
each node reads its own clock (`tests.sim.clock`). Until `Faults.fair_after_ms`
the network is unfair (drops, duplicates, delays up to ten times the usual,
partitions, crashes); after it every message between live endpoints arrives
within `Faults.max_delay_ms`.

Each endpoint is driven as a node drives its replica (`node.driver`,
`node.catchup`, `node.node`), with the driver's own rules: actions are
carried out by `node.driver.carry_out` (records persisted before later
actions, nothing done after a failed write), a view timeout that falls while
sync moves the head waits (`node.driver.SyncDeferral`), and after each
decided block the censorship watch (`node.censorship`) may forward the
mempool's oldest tx to the primary or suspect the primary. Records are
compacted with `node.wal.select_needed_records`. Sync picks peers and
verifies blocks as `p2p.sync` does: the peer claiming the highest chain, not
one marked bad within the cooldown, the next one when a peer serves nothing;
it fetches blocks over several message delays in batches, and fails (to be
retried at the next poll) when that peer is down or cut off. Txs are admitted
into a `node.mempool` by one node, gossiped once by every node that admits
them, and offered again while they wait. Crashes come at random instants or
at chosen protocol steps (`CrashPoint`): right after a record is persisted, a
message sent or a block decided, or while a record is being written, which
then may be lost or torn; at a `persist` step the log may instead fail the
write (the replica halts as the driver halts it, keeps syncing, and is
restarted by its operator later). A restarted replica reads its log back as
a node does (`node.wal.recover_records`); a log damaged in the middle
(`Faults.damaged`) must be refused, and is then repaired as the spec says
(set aside: the node abstains as `node.wal.abstain_through` says).

A validator set change (`SetChange`) is a tx a client submits like the
others; validators it adds run as endpoints from the start, following the
commits until the set that holds them begins, and every decided block's
certificate is checked against the set of its height.

A validator may run twice under one key (`Faults.twins`, as in the Twins
method): both endpoints are one faulty validator. Byzantine validators (see
`tests.sim.byzantine`) run an honest replica underneath and rewrite what they
send.

Checked as it runs: safety (no two honest endpoints decide different blocks
at one height, every decided or synced block carries a valid certificate, no
tx is committed twice, no honest endpoint signs two different messages for
one view and height, across its restarts, a damaged log is never read as a
shorter one, a restarted replica can read its log) and load (no message
costs an honest replica more signature checks than an honest message of its
kind may, `tests.sim.signatures`). `run` then reports liveness: whether
every acknowledged tx (one an honest node admitted and did not lose with its
own crash before any other honest node got it) was committed by every honest
endpoint within `Faults.liveness_bound_ms` of the network turning fair, and
whether every honest replica signed a vote again within
`Faults.vote_bound_ms` of the last fault healing (a client submitting a tx
now and then so there is something to vote on), not only the network
committing.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from consensus.actions import Action, Broadcast, CancelTimer, Decide, Persist, RequestSync, Send, SetTimer
from consensus.errors import ConsensusLogCorrupted
from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    Timeout,
    decode_message,
    encode_message,
)
from consensus.records import load_records as load_replica_records
from consensus.replica import Replica
from ledger.block import WORK_BASE_BYTES, WORK_UNIT_BYTES, Block, CommitCertificate, verify_certificate
from ledger.encoding import encode, hash_value
from ledger.errors import InvalidCertificate, LedgerError
from ledger.genesis import ConsensusParams, Identity
from ledger.keys import PrivateKey
from ledger.tx import Tx
from node.catchup import POLL_INTERVAL_S
from node.censorship import SUSPECT, CensorshipWatch
from node.driver import SYNC_RECHECK_S, SyncDeferral, carry_out
from node.mempool import Mempool
from node.node import REOFFER_AFTER_BLOCKS, REOFFER_INTERVAL_S, REOFFER_MAX_TXS
from node.wal import (
    FILE_MAGIC,
    FRAME_HEADER,
    ConsensusLog,
    CorruptLog,
    abstain_through,
    encode_frame,
    recover_records,
    select_needed_records,
)
from p2p.peers import DEFAULT_BAD_PEER_COOLDOWN_S
from p2p.verify import verify_block
from tests.helpers.builders import Network, make_network
from tests.sim import signatures
from tests.sim.app import SET_KIND, VALIDATORS_KIND, MemoryApp
from tests.sim.clock import ClockFault, make_clock
from tests.sim.network import Partition, draw_partition

SIM_PARAMS = ConsensusParams(checkpoint_interval=4, max_block_txs=6, view_timeout_ms=400, max_clock_skew_ms=5000)
"""Small blocks and frequent checkpoints, so a short run crosses many heights and checkpoints."""

SIM_LARGEST_TX_BYTES = WORK_BASE_BYTES + WORK_UNIT_BYTES
"""The largest tx a simulated client makes fits in one work unit: what a block's room is measured against."""

COMPACT_EVERY = 3
"""Decisions between two compactions of a node's consensus log (small, so runs exercise compaction)."""

SYNC_BATCH = 3
"""Blocks one sync transfer carries; a longer catch-up takes several."""

BATCH_WAIT_MS = 5
"""How long a node lets its mempool fill before it offers a batch to its replica."""

CLIENT_RETRY_MS = 100
"""How long a client waits before it retries a tx with another node, when the node it chose is down."""

TWIN_SUFFIX = "~twin"
"""Endpoint name of a validator's twin: its id plus this."""

VOTE_BOUND_MS = 30_000
"""Every honest replica signs a vote within this long after the last fault healed: enough for the view timer's
back-off of the views that failed meanwhile (400 ms doubling up to 64 times) to run out once, and for a replica
that missed a view change to learn the live view and vote there."""

PROBE_INTERVAL_MS = 500
"""While some honest replica has not voted since the last fault healed, a client submits a tx this often, so
that there is always a block to vote on."""

ReplicaFactory = Callable[..., Replica]


class _Crashed(Exception):
    """Raised inside a node's handling of an event when a crash point fells it: nothing after it is done."""


Torn = Literal["none", "lost", "cut"]
"""What becomes of the record being written at a crash: fully written, lost, or cut short."""


@dataclass(frozen=True)
class CrashPoint:
    """Crash an endpoint the first time it reaches a protocol step, and restart it `down_ms` later.

    A step is a phase and a kind: `persist <record>` (a record about to be made durable: `prepared`,
    `view` (a view entered), or a signed `pre_prepare`, `prepare`, `commit`, `view_change`, `new_view`),
    `send <message>` (just sent), or `decide` (a block just committed).
    """

    endpoint: str
    step: str
    height: int | None = None
    """Only at this height (a view change's certified height); any height if None."""
    view: int | None = None
    """Only in this view; any view if None."""
    torn: Torn = "none"
    """For a `persist` step: the record is fully written (then the crash), lost, or cut short."""
    down_ms: int = 200
    write_error: bool = False
    """For a `persist` step: instead of a crash, writing or syncing the log fails (the record is written, lost or
    cut as `torn` says): the node halts its replica as `node.driver` does, keeps syncing blocks, and its operator
    restarts it `down_ms` later."""


@dataclass(frozen=True)
class Lose:
    """A rule of a staged schedule: messages that match are always lost."""

    kind: str | None
    """Message class name (`Commit`, `ViewChange`, ...); None for every kind."""
    view: int | None = None
    height: int | None = None
    sender: str | None = None
    receiver: str | None = None
    """Validator id the message is addressed to."""

    def matches(self, message: Message, sender: str, receiver: str) -> bool:
        return (
            self.kind in (None, type(message).__name__)
            and self.view in (None, getattr(message, "view", None))
            and self.height in (None, getattr(message, "height", None))
            and self.sender in (None, sender)
            and self.receiver in (None, receiver)
        )


@dataclass(frozen=True)
class Faults:
    """What can go wrong in one schedule."""

    drop: float = 0.0
    """Chance that a message sent before the network turns fair is lost."""
    duplicate: float = 0.0
    """Chance that a message sent before the network turns fair arrives twice."""
    max_delay_ms: int = 40
    """Longest delivery delay once the network is fair (up to 10x that before)."""
    crashes: int = 0
    """How many crash-and-restart events hit honest endpoints at random instants before the network turns fair."""
    crash_points: tuple[CrashPoint, ...] = ()
    """Crashes at chosen protocol steps."""
    partitions: int = 0
    """How many temporary partitions, each of a random shape, cut the network before it turns fair."""
    byzantine: tuple[tuple[str, str], ...] = ()
    """(validator id, behaviour name) for each Byzantine validator (see `tests.sim.byzantine`)."""
    twins: tuple[str, ...] = ()
    """Validators that run as two endpoints with one key."""
    clocks: tuple[ClockFault, ...] = ()
    """Clock of validator i (and of its twin); a perfect clock for those not listed."""
    lose: tuple[Lose, ...] = ()
    """Messages that are always lost (to stage a precise scenario)."""
    damaged: tuple[str, ...] = ()
    """Endpoints whose consensus log is damaged in the middle (a byte of a record followed by whole ones) when they
    next restart: they must refuse to start, and their operator repairs them `repair_ms` later by moving the log
    aside (docs/spec/consensus.md), after which they abstain as `node.wal.abstain_through` says."""
    repair_ms: int = 2000
    sync_delays: int = 3
    """Message delays one sync transfer takes (request, then blocks)."""
    gossip_loss: bool = True
    """Tx gossip crosses the same unfair network as consensus messages; False delivers it to every live node."""
    txs: int = 12
    """How many txs clients submit."""
    fair_after_ms: int = 4000
    liveness_bound_ms: int = 90_000
    """Every acknowledged tx must be committed everywhere this long after the network turns fair."""
    vote_bound_ms: int = VOTE_BOUND_MS
    """Every honest replica must sign a vote this long after the last fault heals (see `VOTE_BOUND_MS`)."""


@dataclass(frozen=True)
class SetChange:
    """A validator set change submitted during the run (a `kv.validators` tx)."""

    ids: tuple[str, ...]
    """The new set, in order: genesis validators and `joining` ones."""
    joining: tuple[str, ...] = ()
    """Validators not in genesis; each runs as an endpoint from the start."""
    at_ms: int = 300
    """When a client submits it."""


SAFETY_KINDS = frozenset({"safety", "certificate", "sync", "duplicate", "equivocation", "damage"})
"""Violations that break safety; `restart` (a replica that cannot read its log back) is one of liveness."""


@dataclass(frozen=True)
class Violation:
    """An invariant the run broke."""

    kind: str
    """`safety` (two honest endpoints decided different blocks), `certificate`, `sync` (a synced block conflicts
    with a committed one), `duplicate` (a tx committed twice), `equivocation` (an honest endpoint signed two
    different messages for one slot, such as after a restart that lost a record), `damage` (a log damaged in the
    middle read back without complaint), `load` (one message cost an honest replica more signature checks than
    an honest message of its kind may: `tests.sim.signatures.most_checks`) or `restart` (a log the replica cannot
    read)."""
    detail: str


def is_safe(violations: list[Violation]) -> bool:
    return not any(v.kind in SAFETY_KINDS for v in violations)


@dataclass
class SimNode:
    """One endpoint: its durable parts (chain, records, clock) and its volatile ones (replica, mempool, timers)."""

    name: str
    """Endpoint name: the validator id, or the id plus `TWIN_SUFFIX` for a twin."""
    id: str
    """Validator id (shared by twins)."""
    key: PrivateKey
    app: MemoryApp
    replica: Replica | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_bytes: int = 0
    """Bytes at the end of the last record's frame that never reached the disk (a crash cut its write short)."""
    mempool: Mempool = field(default_factory=Mempool)
    seen: set[bytes] = field(default_factory=set)
    """Tx ids already admitted and forwarded (in memory, as the node's gossip keeps them)."""
    timers: dict[str, int] = field(default_factory=dict)
    """Timer name -> token of the armed instance (older tokens are stale)."""
    batch_scheduled: bool = False
    decisions_since_compaction: int = 0
    syncing: bool = False
    timeouts: SyncDeferral = field(default_factory=SyncDeferral)
    """The driver's rule that holds a view timeout back while sync moves the head."""
    sync_source: str | None = None
    """The peer it syncs from (or last synced from)."""
    sync_wanted: bool = False
    sync_skipped: set[str] = field(default_factory=set)
    """Peers that served nothing in this sync run (tried again in the next)."""
    bad_peers: dict[str, int] = field(default_factory=dict)
    """Peer -> when a block it served failed verification (ignored by sync for the cooldown of `p2p.peers`)."""
    last_commit_ms: int = 0
    """Its clock when it last committed a block (or started): a node idle for long re-offers every stuck tx."""
    blocks_with_room: int = 0
    """Committed blocks that could have held one more tx, counted as the node counts them for re-offering."""
    polled_height: int = 0
    """Head at the last catch-up poll: a node that made no progress since syncs from any peer ahead."""
    watch: CensorshipWatch = field(default_factory=lambda: CensorshipWatch(SIM_PARAMS, SIM_LARGEST_TX_BYTES))
    """The censorship watch of its driver (volatile: a restart starts a new one)."""
    behaviour: Any = None
    """None for an honest node, else a Byzantine behaviour."""
    is_broken: bool = False
    """It could not restart from its log, and stays down."""
    last_vote_ms: int = -1
    """Simulated time of the last PREPARE or COMMIT it signed and sent (-1 if none)."""
    halted: bool = False
    """Its consensus log failed a write: the replica is fed nothing and nothing it asks is done until a restart."""

    @property
    def is_up(self) -> bool:
        return self.replica is not None

    @property
    def is_fed(self) -> bool:
        """Does its replica take inputs (it is up and not halted)?"""
        return self.replica is not None and not self.halted


@dataclass
class Outcome:
    """What one run found."""

    seed: int
    violations: list[Violation]
    is_live: bool
    end_ms: int
    heights: dict[str, int]
    max_log_size: int
    lost_txs: int = 0
    """Acknowledged txs lost with the crash of every honest node that held them (not required to commit)."""
    silent: tuple[str, ...] = ()
    """Honest replicas that signed no vote within `Faults.vote_bound_ms` of the last fault healing."""
    vote_delay_ms: int | None = None
    """How long after the last fault healed the last honest replica voted again (None if one never did)."""
    max_checks: int = 0
    """Most signature checks one delivered message cost its receiver."""

    @property
    def is_safe(self) -> bool:
        return is_safe(self.violations)


class Simulator:
    """Runs n validators (n plus twins endpoints) over a seeded, simulated network."""

    def __init__(
        self,
        validators: int,
        seed: int,
        faults: Faults = Faults(),
        replica_factory: ReplicaFactory = Replica,
        params: ConsensusParams = SIM_PARAMS,
        change: SetChange | None = None,
    ) -> None:
        from tests.sim.byzantine import make_behaviour

        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = faults
        self.network: Network = make_network(validators=validators, consensus=params)
        self.genesis = self.network.genesis
        self.replica_factory = replica_factory
        self.now = 0
        self._queue: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._seq = 0
        self._token = 0
        self.nodes: dict[str, SimNode] = {}
        self.change = change
        candidates = {}
        for vid in () if change is None else change.joining:
            self.network.keys[vid] = PrivateKey.from_seed_text(f"{self.genesis.chain_id}/{vid}")
            candidates[vid] = Identity(vid, "org-0", self.network.keys[vid].public, frozenset({"validator"}))
        self.validator_ids = [*self.genesis.validator_ids(), *candidates]
        """Every endpoint's validator id, genesis's and joining ones: where broadcasts go."""
        byzantine = dict(faults.byzantine)
        for index, vid in enumerate(self.validator_ids):
            clock = faults.clocks[index] if index < len(faults.clocks) else ClockFault()
            names = [vid, vid + TWIN_SUFFIX] if vid in faults.twins else [vid]
            for name in names:
                app = MemoryApp(self.genesis, vid, self._make_clock(clock), candidates=dict(candidates))
                watch = CensorshipWatch(params, SIM_LARGEST_TX_BYTES)
                self.nodes[name] = SimNode(name, vid, self.network.keys[vid], app, watch=watch)
            if vid in byzantine:
                self.nodes[vid].behaviour = make_behaviour(byzantine[vid], self, vid)
        faulty = set(byzantine) | set(faults.twins)
        self.honest = [name for name, node in self.nodes.items() if node.id not in faulty]
        self._honest_ids = {self.nodes[name].id for name in self.honest}
        self.lose = list(faults.lose)
        """Loss rules in force (a staged schedule adds and removes them as it goes)."""
        self.crash_points: dict[str, list[CrashPoint]] = {}
        for point in faults.crash_points:
            self.crash_points.setdefault(point.endpoint, []).append(point)
        self.submitted: dict[bytes, Tx] = {}
        self.acknowledged: set[bytes] = set()
        self.lost: set[bytes] = set()
        self.decided: dict[int, tuple[str, bytes]] = {}
        """Height -> the first honest endpoint to commit it and the hash of the whole block it committed."""
        self.violations: list[Violation] = []
        self.partition: Partition | None = None
        self.fair_at = faults.fair_after_ms
        self.max_log_size = 0
        self.max_checks = 0
        """Most signature checks one delivered message cost its receiver."""
        self.booted = False
        self.healed_at = faults.fair_after_ms
        """When the last fault (partition, crash, restart, loss rule) began or healed, or the network turned fair."""
        self.damage = set(faults.damaged)
        """Endpoints whose log is yet to be found damaged at a restart."""
        self.fail_stopped: set[str] = set()
        """Endpoints that refused to start on a damaged log and wait for their operator's repair."""
        self.repaired: set[str] = set()
        """Endpoints whose damaged log was set aside (as `node.config.DAMAGED_WAL_FILE`)."""
        self.signed: dict[tuple[str, str, int, int], bytes] = {}
        """(endpoint, message kind, view, height) -> signature of what an honest endpoint signed and sent there."""

    def _make_clock(self, fault: ClockFault) -> Callable[[], int]:
        return make_clock(fault, self.genesis.genesis_time_ms, lambda: self.now)

    # -- scheduling ---------------------------------------------------------------

    def schedule(self, delay_ms: int, kind: str, *payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + max(delay_ms, 0), self._seq, kind, payload))

    def is_fair(self) -> bool:
        return self.now >= self.fair_at

    def _plan_faults(self) -> None:
        fair = self.faults.fair_after_ms
        for _ in range(self.faults.txs):
            self.schedule(self.rng.randrange(0, fair + 1000), "submit")
        if self.change is not None:
            tx = self.network.tx("channel-1", VALIDATORS_KIND, {"ids": list(self.change.ids)})
            self.submitted[tx.id] = tx
            self.schedule(self.change.at_ms, "send_tx", tx, None)
        for _ in range(self.faults.crashes):
            victim = self.rng.choice(self.honest)
            down_at = self.rng.randrange(0, max(fair - 200, 1))
            self.schedule(down_at, "crash", victim)
            self.schedule(self.rng.randrange(down_at + 1, max(fair, down_at + 2)), "restart", victim)
        for name in self.faults.damaged:
            down_at = self.rng.randrange(0, max(fair - 200, 1))
            self.schedule(down_at, "crash", name)
            self.schedule(self.rng.randrange(down_at + 1, max(fair, down_at + 2)), "restart", name)
        for _ in range(self.faults.partitions):
            start = self.rng.randrange(0, max(fair - 200, 1))
            self.schedule(start, "partition", draw_partition(self.rng, list(self.nodes)))
            self.schedule(self.rng.randrange(start + 1, max(fair, start + 2)), "heal")

    # -- running ------------------------------------------------------------------

    def boot(self) -> None:
        """Start every endpoint and plan the schedule's random faults (once)."""
        if self.booted:
            return
        self.booted = True
        for node in self.nodes.values():
            self._boot(node)
        self._plan_faults()

    def run(self) -> Outcome:
        """Run until every acknowledged tx is committed by every honest endpoint, the bound passes, or safety breaks."""
        self.boot()
        deadline = max(self.fair_at, self.now) + self.faults.liveness_bound_ms
        is_live = self.advance(lambda: self.is_fair() and self.is_all_committed(), deadline)
        if not self._queue and self.is_all_committed():
            is_live = True  # every tx committed before the network turned fair, and nothing is left to happen
        silent = self._await_votes() if is_live and self.is_safe() else ()
        heights = {name: node.app.head()[0] for name, node in self.nodes.items()}
        return Outcome(
            self.seed,
            list(self.violations),
            is_live and not silent,
            self.now,
            heights,
            self.max_log_size,
            len(self.lost),
            silent,
            None if silent else max(self._last_votes(), default=self.healed_at) - self.healed_at,
            self.max_checks,
        )

    def note_fault(self) -> None:
        """A fault began or healed now: the per-replica liveness bound counts from the last such instant."""
        self.healed_at = max(self.healed_at, self.now)

    def silent_replicas(self) -> tuple[str, ...]:
        """Honest endpoints that signed no vote since the last fault healed.

        Not counted: a replica not in the validator set of the height it works on (it has nothing to sign), and
        one that works in the live view (the highest view an honest replica works in) when that view's primary is
        faulty: a Byzantine primary may show one honest replica only proposals it must refuse, and f+1 suspicions
        are needed to replace it, as long as the others commit without that replica. A replica that missed a view
        change is never excused: it is not in the live view."""
        working = [
            node.replica
            for name in self.honest
            if (node := self.nodes[name]).replica is not None and not node.replica.is_view_changing
        ]
        live = max(working, key=lambda replica: replica.view, default=None)
        faulty_view = -1 if live is None or live.primary in self._honest_ids else live.view
        return tuple(
            name
            for name in self.honest
            if self.nodes[name].last_vote_ms < self.healed_at
            and not self._is_excused(self.nodes[name].replica, faulty_view)
        )

    def _is_excused(self, replica: Replica | None, faulty_view: int) -> bool:
        if replica is None:
            return False
        return not replica.is_member or (replica.view == faulty_view and not replica.is_view_changing)

    def _last_votes(self) -> list[int]:
        return [self.nodes[name].last_vote_ms for name in self.honest if name not in self.silent_replicas()]

    def _await_votes(self) -> tuple[str, ...]:
        """Run on until every honest replica has signed a vote since the last fault healed, a client submitting a
        tx to an honest node every `PROBE_INTERVAL_MS` so that there is a block to vote on; the replicas still
        silent `Faults.vote_bound_ms` after the heal."""
        while (silent := self.silent_replicas()) and self.is_safe():
            deadline = self.healed_at + self.faults.vote_bound_ms
            up = [name for name in self.honest if self.nodes[name].is_up]
            if self.now >= deadline or not self._queue:
                return silent
            if up:
                self.submit(self.rng.choice(up))
            self.advance(lambda: not self.silent_replicas(), min(self.now + PROBE_INTERVAL_MS, deadline))
        return ()

    def advance(self, done: Callable[[], bool], until_ms: int) -> bool:
        """Handle events in time order until `done()` holds (True), time passes `until_ms` or safety breaks."""
        self.boot()
        while self._queue:
            if done():
                return True
            time, _, kind, payload = self._queue[0]
            if time > until_ms:
                self.now = until_ms
                break
            heapq.heappop(self._queue)
            self.now = time
            getattr(self, f"_on_{kind}")(*payload)
            if not self.is_safe():
                return False
        return done()

    def is_safe(self) -> bool:
        return is_safe(self.violations)

    def required_txs(self) -> set[bytes]:
        """Acknowledged txs that were not lost with their holders."""
        return self.acknowledged - self.lost

    def is_all_committed(self) -> bool:
        if len(self.submitted) < self.faults.txs + (self.change is not None):
            return False
        required = self.required_txs()
        return all(
            required <= self.nodes[name].app.committed_ids for name in self.honest if name not in self.fail_stopped
        )

    def _boot(self, node: SimNode) -> None:
        records = self._read_log(node)
        if records is None:
            return
        mute_through = abstain_through(records, node.app.head()[0], node.name in self.repaired)
        try:
            node.replica = self.replica_factory(
                self.genesis, node.id, node.key, node.app, list(records), mute_through=mute_through
            )
        except ConsensusLogCorrupted as exc:
            self.violations.append(Violation("restart", f"{node.name} cannot restart: {exc}"))
            node.is_broken = True
            return
        node.records, node.torn_bytes = list(records), 0
        node.polled_height, node.last_commit_ms = node.app.head()[0], node.app.now()
        self._set_timer(node, "poll", int(POLL_INTERVAL_S * 1000), "poll")
        self._set_timer(node, "reoffer", int(REOFFER_INTERVAL_S * 1000), "reoffer")
        self._perform(node, node.replica.start())

    def _read_log(self, node: SimNode) -> list[dict[str, Any]] | None:
        """What the restarting node reads back from its log, through `node.wal` when the last write was torn or
        the log is damaged (None if it does not start)."""
        if node.name in self.damage and len(node.records) >= 2:
            self.damage.discard(node.name)
            return self._read_damaged_log(node)
        if not node.torn_bytes:
            return node.records
        with tempfile.TemporaryDirectory() as home:
            path = Path(home) / "consensus.log"
            log = ConsensusLog(path)
            log.append(node.records)
            size = path.stat().st_size
            log.close()
            with path.open("r+b") as file:
                file.truncate(size - node.torn_bytes)
            try:
                return recover_records(path)
            except LedgerError as exc:
                reason = str(exc).replace(str(path), path.name)
                self.violations.append(Violation("restart", f"{node.name} cannot read its torn log: {reason}"))
                node.is_broken = True
                return None

    def _read_damaged_log(self, node: SimNode) -> list[dict[str, Any]] | None:
        """Damage one byte of a record that whole records follow, and read the log back as a node does: it must
        refuse to start (`CorruptLog`), not cut the log there; its operator repairs it later."""
        with tempfile.TemporaryDirectory() as home:
            path = Path(home) / "consensus.log"
            log = ConsensusLog(path)
            log.append(node.records)
            log.close()
            frames = [len(encode_frame(record)) for record in node.records]
            victim = self.rng.randrange(len(frames) - 1)
            offset = len(FILE_MAGIC) + sum(frames[:victim]) + self.rng.randrange(frames[victim])
            data = bytearray(path.read_bytes())
            data[offset] ^= 1 << self.rng.randrange(8)
            path.write_bytes(bytes(data))
            try:
                records = recover_records(path)
            except CorruptLog:
                self.fail_stopped.add(node.name)
                self.schedule(self.faults.repair_ms, "repair", node.name)
                return None
        detail = f"{node.name} read a log damaged at byte {offset} as {len(records)} of {len(frames)} records"
        self.violations.append(Violation("damage", detail))
        node.is_broken = True
        return None

    def _on_repair(self, name: str) -> None:
        """The operator moves the damaged log aside and starts the node without it."""
        node = self.nodes[name]
        node.records, node.torn_bytes = [], 0
        self.fail_stopped.discard(name)
        self.repaired.add(name)
        self._on_restart(name)

    # -- clients and gossip -------------------------------------------------------

    def submit(self, to: str | None = None) -> None:
        """A client makes a new tx and sends it to endpoint `to` (or to one it picks)."""
        key = f"k{self.rng.randrange(8)}"
        tx = self.network.tx("channel-1", SET_KIND, {"key": key, "value": self.rng.randrange(1000)})
        self.submitted[tx.id] = tx
        self._on_send_tx(tx, to)

    def _on_submit(self) -> None:
        self.submit()

    def _on_send_tx(self, tx: Tx, to: str | None) -> None:
        """The client's attempt: if the node is down, it tries another one later."""
        node = self.nodes[to or self.rng.choice(list(self.nodes))]
        if not node.is_up:
            self.schedule(CLIENT_RETRY_MS, "send_tx", tx, None)
            return
        if node.name in self.honest:
            self.acknowledged.add(tx.id)
        self._admit(node, tx)

    def _admit(self, node: SimNode, tx: Tx) -> None:
        """Admit `tx` into the mempool and forward it once to every other endpoint."""
        if tx.id in node.seen or tx.id in node.app.committed_ids:
            return
        node.seen.add(tx.id)
        node.mempool.add(tx, len(tx.signing_bytes()) + len(tx.signature), node.app.now(), node.blocks_with_room)
        self._offer_batch_soon(node)
        self._gossip(node, tx)

    def _gossip(self, node: SimNode, tx: Tx) -> None:
        for peer in self.nodes.values():
            if peer.id != node.id and (not self.faults.gossip_loss or self._is_carried(node.name, peer.name)):
                self.schedule(self._delay(), "gossip", peer.name, tx.id)

    def _on_reoffer(self, name: str, token: int) -> None:
        """As a node does every second: gossip again the txs stuck in the mempool (`Mempool.take_unproposed`)."""
        node = self.nodes[name]
        if node.replica is None or node.timers.get("reoffer") != token:
            return
        self._set_timer(node, "reoffer", int(REOFFER_INTERVAL_S * 1000), "reoffer")
        age_ms, now = 2 * self.genesis.consensus.view_timeout_ms, node.app.now()
        blocks = 0 if now - node.last_commit_ms >= age_ms else REOFFER_AFTER_BLOCKS
        for tx in node.mempool.take_unproposed(now, node.blocks_with_room, age_ms, blocks, REOFFER_MAX_TXS):
            self._gossip(node, tx)

    def _on_gossip(self, name: str, tx_id: bytes) -> None:
        node = self.nodes[name]
        if node.is_up:
            self._admit(node, self.submitted[tx_id])

    def _offer_batch_soon(self, node: SimNode) -> None:
        if len(node.mempool) and not node.batch_scheduled:
            node.batch_scheduled = True
            self.schedule(BATCH_WAIT_MS, "batch", node.name)

    def _on_batch(self, name: str) -> None:
        node = self.nodes[name]
        node.batch_scheduled = False
        if node.is_fed and len(node.mempool):
            txs = node.mempool.batch(self.genesis.consensus.max_block_txs)
            self._perform(node, node.replica.on_batch(txs))

    # -- messages and timers ------------------------------------------------------

    def _on_deliver(self, name: str, sender: str, data: bytes) -> None:
        node = self.nodes[name]
        if not node.is_fed:
            return
        try:
            message = decode_message(data)
        except LedgerError:
            return  # the driver drops what does not decode
        if node.behaviour is not None:
            node.behaviour.observe(message)
        before = signatures.checks()
        actions = node.replica.on_message(sender, message)
        cost = signatures.checks() - before
        self.max_checks = max(self.max_checks, cost)
        bound = signatures.most_checks(message, len(self.validator_ids))
        if cost > bound and name in self.honest:
            detail = f"{name} made {cost} signature checks for one {type(message).__name__} from {sender}"
            self.violations.append(Violation("load", f"{detail} (bound {bound})"))
        self.max_log_size = max(self.max_log_size, node.replica.log_size)
        self._perform(node, actions)

    def _on_timer(self, name: str, timer: str, token: int) -> None:
        node = self.nodes[name]
        if not node.is_fed or node.timers.get(timer) != token:
            return
        del node.timers[timer]
        if node.timeouts.defers(timer, node.syncing, node.app.head()[0]):
            self._set_timer(node, timer, int(SYNC_RECHECK_S * 1000))
            return
        self._perform(node, node.replica.on_timeout(timer))

    def _set_timer(self, node: SimNode, timer: str, delay_ms: int, event: str = "timer") -> None:
        """Arm `timer` of `node` (a replica's timer, or the node's own `poll` and `reoffer` loops)."""
        self._token += 1
        node.timers[timer] = self._token
        if event == "timer":
            self.schedule(delay_ms, event, node.name, timer, self._token)
        else:
            self.schedule(delay_ms, event, node.name, self._token)

    # -- catching up --------------------------------------------------------------

    def _on_poll(self, name: str, token: int) -> None:
        """The catch-up loop's look at the peers: sync when asked to, or when stuck behind a peer."""
        node = self.nodes[name]
        if node.replica is None or node.timers.get("poll") != token:
            return
        self._set_timer(node, "poll", int(POLL_INTERVAL_S * 1000), "poll")
        height = node.app.head()[0]
        if not node.syncing and (node.sync_wanted or height == node.polled_height):
            self._start_sync(node)
        node.polled_height = node.app.head()[0]

    def _start_sync(self, node: SimNode) -> None:
        """Ask the reachable peer that claims the highest chain for the blocks this node lacks, as `p2p.sync` picks
        it: not one marked bad within `DEFAULT_BAD_PEER_COOLDOWN_S`, nor one that served nothing in this run."""
        node.sync_wanted = False
        height = node.app.head()[0]
        cooldown_ms = int(DEFAULT_BAD_PEER_COOLDOWN_S * 1000)
        ahead = [
            peer
            for peer in self.nodes.values()
            if peer.id != node.id
            and peer.is_up
            and self._is_link_up(node.name, peer.name)
            and self.now - node.bad_peers.get(peer.name, -cooldown_ms) >= cooldown_ms
            and peer.name not in node.sync_skipped
            and self._claimed_height(peer) > height
        ]
        if not ahead:
            node.sync_skipped.clear()
            return
        source = max(ahead, key=lambda peer: (self._claimed_height(peer), peer.name))
        node.syncing, node.sync_source = True, source.name
        self.schedule(self._delay() * self.faults.sync_delays, "sync_batch", node.name, source.name)

    def _claimed_height(self, peer: SimNode) -> int:
        """The height a peer answers when asked (a lying one claims more than it has)."""
        return peer.behaviour.claim_height(peer) if peer.behaviour is not None else peer.app.head()[0]

    def _on_sync_batch(self, name: str, source_name: str) -> None:
        node, source = self.nodes[name], self.nodes[source_name]
        if node.replica is None or not node.syncing:
            return
        if not source.is_up or not self._is_carried(source.name, node.name):
            node.syncing, node.sync_wanted = False, True  # the transfer failed: retry at the next poll
            return
        height = node.app.head()[0]
        if source.behaviour is not None:
            served = source.behaviour.serve_blocks(source, height + 1, SYNC_BATCH)
        else:
            served = list(zip(source.app.blocks, source.app.certificates, strict=True))[height : height + SYNC_BATCH]
        if not served:
            node.syncing = False  # it served nothing: try the next peer in this run
            node.sync_skipped.add(source.name)
            self._start_sync(node)
            return
        for block, certificate in served:
            if not self._apply_synced(node, source, block, certificate):
                node.syncing, node.sync_wanted = False, True
                return
        if self._claimed_height(source) > node.app.head()[0]:
            self.schedule(self._delay() * self.faults.sync_delays, "sync_batch", node.name, source.name)
            return
        node.syncing = False
        node.sync_skipped.clear()
        if node.is_fed:
            self._compact(node)
            self._perform(node, node.replica.on_synced())
            self._offer_batch_soon(node)

    def _apply_synced(self, node: SimNode, source: SimNode, block: Block, certificate: CommitCertificate) -> bool:
        """Verify a synced block as `p2p.sync` does and apply it; a block that fails marks its source bad (and, from
        an honest source, is a broken invariant)."""
        height, head_hash = node.app.head()
        try:
            verify_block(self.genesis, block, certificate, height + 1, head_hash, node.app.validators(height + 1))
        except LedgerError as exc:
            node.bad_peers[source.name] = self.now
            if source.name in self.honest:
                kind = "certificate" if isinstance(exc, InvalidCertificate) else "sync"
                self.violations.append(Violation(kind, f"{node.name} synced block {height + 1}: {exc}"))
            return False
        node.app.apply(block, certificate, verify=False)
        self._record_commit(node, block)
        return True

    # -- crashes and the network --------------------------------------------------

    def _on_crash(self, name: str) -> None:
        node = self.nodes[name]
        if node.replica is None:
            return
        self.note_fault()
        node.replica, node.halted = None, False
        node.watch = CensorshipWatch(self.genesis.consensus, SIM_LARGEST_TX_BYTES)
        node.timers.clear()
        node.batch_scheduled = node.syncing = node.sync_wanted = False
        node.seen.clear()
        held, node.mempool = {tx.id for tx in node.mempool.batch(len(node.mempool))}, Mempool()
        if name in self.honest:
            for tx_id in held & self.acknowledged:
                if not self._is_held_elsewhere(tx_id):
                    self.lost.add(tx_id)

    def _is_held_elsewhere(self, tx_id: bytes) -> bool:
        return any(
            tx_id in self.nodes[name].mempool or tx_id in self.nodes[name].app.committed_ids for name in self.honest
        )

    def _on_restart(self, name: str) -> None:
        node = self.nodes[name]
        if node.replica is not None or node.is_broken:
            return
        self._boot(node)
        self.note_fault()
        if node.replica is None:
            return
        for tx_id in self.submitted:  # peers' gossip queued for it while it was down
            if any(tx_id in peer.mempool for peer in self.nodes.values() if peer.id != node.id):
                self.schedule(self._delay(), "gossip", name, tx_id)

    def _on_partition(self, partition: Partition) -> None:
        self.partition = partition
        self.note_fault()

    def _on_heal(self) -> None:
        self.partition = None
        self.note_fault()

    def _is_link_up(self, sender: str, receiver: str) -> bool:
        """Does the current partition let `sender` reach `receiver` (ignoring random loss)?"""
        return self.partition is None or not self.partition.is_cut(sender, receiver)

    def _is_carried(self, sender: str, receiver: str) -> bool:
        """Does one message from `sender` reach `receiver`: the link is up and, before fair, it was not dropped."""
        if not self._is_link_up(sender, receiver):
            return False
        return self.is_fair() or self.rng.random() >= self.faults.drop

    # -- actions ------------------------------------------------------------------

    def _perform(self, node: SimNode, actions: list[Action]) -> None:
        """Carry out `actions` as the driver does (`node.driver.carry_out`), crashing or failing a write where a
        crash point of `node` says."""
        if node.halted:
            return
        with contextlib.suppress(_Crashed):
            carry_out(actions, lambda records: self._write(node, records), lambda action: self._do(node, action))

    def _write(self, node: SimNode, records: list[dict[str, Any]]) -> bool:
        """Append `records` to the log of `node`; False (and the node halts) if a write error strikes."""
        points = self.crash_points.get(node.name)
        for record in records:
            point = self._reached(node, points, Persist(record)) if points else None
            if point is None:
                node.records.append(record)
                continue
            self._tear(node, record, point.torn)
            if point.write_error:
                self._halt(node, point.down_ms)
                return False
            self.crash(node.name, point.down_ms)
            raise _Crashed
        return True

    def _do(self, node: SimNode, action: Action) -> None:
        points = self.crash_points.get(node.name)
        point = self._reached(node, points, action) if points else None
        self._carry_out(node, action)
        if point is not None:
            self.crash(node.name, point.down_ms)
            raise _Crashed

    def _halt(self, node: SimNode, down_ms: int) -> None:
        """The log of `node` failed a write: its replica signs and sends nothing more until restarted."""
        node.halted = True
        node.timers = {name: token for name, token in node.timers.items() if name in ("poll", "reoffer")}
        self.note_fault()
        self.schedule(down_ms, "operator_restart", node.name)

    def _on_operator_restart(self, name: str) -> None:
        if self.nodes[name].halted:
            self._on_crash(name)
            self._on_restart(name)

    def _carry_out(self, node: SimNode, action: Action) -> None:
        if isinstance(action, Persist):
            node.records.append(action.record)
        elif isinstance(action, Send):
            self._check_signed(node, action.message)
            self._send(node, action.to, action.message)
        elif isinstance(action, Broadcast):
            self._check_signed(node, action.message)
            for vid in self.validator_ids:
                if vid != node.id:
                    self._send(node, vid, action.message)
        elif isinstance(action, Decide):
            self._decide(node, action)
        elif isinstance(action, SetTimer):
            self._set_timer(node, action.name, action.delay_ms)
        elif isinstance(action, CancelTimer):
            node.timers.pop(action.name, None)
        elif isinstance(action, RequestSync):
            node.sync_wanted = True
            if not node.syncing:
                self.schedule(self._delay(), "sync_start", node.name)

    def _check_signed(self, node: SimNode, message: Message) -> None:
        """An honest endpoint sends at most one message of a kind for one view and height, across restarts."""
        if node.name not in self.honest or message.sender != node.id or isinstance(message, Checkpoint | Timeout):
            return
        if isinstance(message, Prepare | Commit):
            node.last_vote_ms = self.now
        key = (node.name, type(message).__name__, message.view, getattr(message, "height", 0))
        first = self.signed.setdefault(key, message.signature)
        if first != message.signature:
            detail = f"{node.name} signed two different {key[1]} messages for view {key[2]} at height {key[3]}"
            self.violations.append(Violation("equivocation", detail))

    def _on_sync_start(self, name: str) -> None:
        node = self.nodes[name]
        if node.replica is not None and not node.syncing and node.sync_wanted:
            self._start_sync(node)

    def _reached(self, node: SimNode, points: list[CrashPoint], action: Action) -> CrashPoint | None:
        """The first crash point of `node` that `action` reaches, removed from the plan."""
        step = describe_step(action)
        if step is None:
            return None
        name, view, height = step
        for point in points:
            if point.step == name and point.view in (None, view) and point.height in (None, height):
                points.remove(point)
                return point
        return None

    def _tear(self, node: SimNode, record: dict[str, Any], torn: Torn) -> None:
        """The crash hits while `record` is written: it is fully written, lost, or only a part of it reaches the
        disk."""
        if torn != "lost":
            node.records.append(record)
        if torn == "cut":
            frame = len(encode(record)) + FRAME_HEADER
            node.torn_bytes = 1 + self.rng.randrange(frame - 1)

    def crash(self, name: str, down_ms: int) -> None:
        """Crash endpoint `name` now and restart it `down_ms` later."""
        self._on_crash(name)
        self.schedule(down_ms, "restart", name)

    def _decide(self, node: SimNode, action: Decide) -> None:
        block, certificate = action.block, action.certificate
        if node.name in self.honest:
            try:
                validators = node.app.validators(block.height)
                verify_certificate(certificate, self.genesis, block.hash(), block.height, validators)
            except InvalidCertificate as exc:
                self.violations.append(Violation("certificate", f"{node.name}: {exc}"))
        node.app.apply(block, certificate, verify=False)
        self._record_commit(node, block)
        node.decisions_since_compaction += 1
        if node.decisions_since_compaction >= COMPACT_EVERY and not node.halted:
            self._compact(node)
        if node.is_fed:
            self._watch_oldest_tx(node, block)

    def _watch_oldest_tx(self, node: SimNode, block: Block) -> None:
        """As the driver does after a commit: at a timeout of the censorship watch on the mempool's oldest tx,
        forward it to the primary (over tx gossip), or suspect the primary."""
        found = node.watch.check(block, node.mempool, node.app.is_admissible)
        if found is None or node.replica is None:
            return
        verdict, tx = found
        if verdict == SUSPECT:
            self.schedule(0, "stuck_tx", node.name)
        elif not node.replica.is_primary:
            for endpoint in self._endpoints(node.replica.primary):
                if not self.faults.gossip_loss or self._is_carried(node.name, endpoint):
                    self.schedule(self._delay(), "gossip", endpoint, tx.id)

    def _on_stuck_tx(self, name: str) -> None:
        node = self.nodes[name]
        if node.is_fed:
            self._perform(node, node.replica.on_stuck_tx())

    def _record_commit(self, node: SimNode, block: Block) -> None:
        """Check a newly committed block against the other honest endpoints, and clear its txs from the mempool."""
        if node.name in self.honest:
            content = hash_value(block.to_wire())  # a block is all it contains: the same header over another body forks
            first = self.decided.setdefault(block.height, (node.name, content))
            if first[1] != content:
                detail = f"{first[0]} and {node.name} committed different blocks at {block.height}"
                self.violations.append(Violation("safety", detail))
            if len(node.app.committed_ids) != sum(len(b.txs) for b in node.app.blocks):
                self.violations.append(Violation("duplicate", f"{node.name} committed a tx twice"))
        node.mempool.remove([tx.id for tx in block.txs])
        node.last_commit_ms = node.app.now()
        node.blocks_with_room += node.watch.had_room(block)
        self._offer_batch_soon(node)

    def _compact(self, node: SimNode) -> None:
        node.records = select_needed_records(node.records, node.app.head()[0])
        node.decisions_since_compaction = 0

    def _send(self, node: SimNode, to: str, message: Message) -> None:
        deliveries = [(to, message)] if node.behaviour is None else node.behaviour.rewrite(node, to, message)
        for target, outgoing in deliveries:
            self.deliver(node.name, target, outgoing)

    def deliver(self, sender: str, to: str, message: Message, claimed_sender: str | None = None) -> None:
        """Put `message` on the wire from endpoint `sender` to every endpoint of validator `to`, subject to faults."""
        claimed = claimed_sender or self.nodes[sender].id
        if not any(rule.matches(message, claimed, to) for rule in self.lose):
            self.deliver_bytes(sender, to, encode_message(message), claimed)

    def deliver_bytes(self, sender: str, to: str, data: bytes, claimed_sender: str | None = None) -> None:
        """Put encoded bytes on the wire (they may not decode: the receiver drops what does not)."""
        claimed = claimed_sender or self.nodes[sender].id
        for endpoint in self._endpoints(to):
            if not self._is_carried(sender, endpoint):
                continue
            copies = 2 if not self.is_fair() and self.rng.random() < self.faults.duplicate else 1
            for _ in range(copies):
                self.schedule(self._delay(), "deliver", endpoint, claimed, data)

    def _endpoints(self, vid: str) -> list[str]:
        return [vid, vid + TWIN_SUFFIX] if vid in self.faults.twins else [vid]

    def _delay(self) -> int:
        top = self.faults.max_delay_ms if self.is_fair() else self.faults.max_delay_ms * 10
        return self.rng.randrange(1, top + 1)


_KINDS = {
    "PrePrepare": "pre_prepare",
    "Prepare": "prepare",
    "Commit": "commit",
    "Checkpoint": "checkpoint",
    "ViewChange": "view_change",
    "NewView": "new_view",
    "Timeout": "timeout",
}


def describe_step(action: Action) -> tuple[str, int, int] | None:
    """(step name, view, height) of an action, in the terms of `CrashPoint.step`; None for timers and sync."""
    if isinstance(action, Send | Broadcast):
        return _describe_message("send", action.message)
    if isinstance(action, Decide):
        return "decide", action.certificate.view, action.block.height
    if isinstance(action, Persist):
        restored = load_replica_records([action.record])
        if restored.signed:
            return _describe_message("persist", restored.signed[0])
        if restored.prepared:
            prepared: PreparedCertificate = restored.prepared[0]
            return "persist prepared", prepared.view, prepared.height
        entry = restored.views[0]
        return "persist view", entry.view, entry.height
    return None


def _describe_message(phase: str, message: Message) -> tuple[str, int, int]:
    kind = _KINDS[type(message).__name__]
    view = getattr(message, "view", 0)
    if isinstance(message, NewView):
        return f"{phase} {kind}", view, 0 if message.pre_prepare is None else message.pre_prepare.height
    return f"{phase} {kind}", view, message.height
