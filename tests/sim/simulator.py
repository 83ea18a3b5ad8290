"""A deterministic simulated network of PBFT replicas in one process.

One seeded random generator decides everything: message delays (so
reordering), drops, duplicates, partitions, crashes and restarts of replicas
(which come back from their persisted records and their committed chain),
and when txs are submitted. Time is simulated: timers and deliveries are
events on one queue. Until `Faults.fair_after_ms` the network is unfair
(drops, duplicates, long delays, partitions, crashes); after it every message
arrives within `Faults.max_delay_ms` and every crashed replica is back.
Byzantine validators (see `tests.sim.byzantine`) run an honest replica
underneath but rewrite what they send.

Checked as it runs: safety (no two honest replicas decide different blocks at
one height) and that every decided block carries a valid certificate. `run`
then reports liveness: whether every submitted tx was committed by every
honest replica within `Faults.liveness_bound_ms` of the network turning fair.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.actions import Action, Broadcast, CancelTimer, Decide, Persist, RequestSync, Send, SetTimer
from consensus.messages import Message, decode_message, encode_message
from consensus.replica import Replica
from ledger.block import verify_certificate
from ledger.errors import InvalidCertificate, LedgerError
from ledger.genesis import ConsensusParams
from ledger.keys import PrivateKey
from ledger.tx import Tx
from tests.helpers.builders import Network, make_network
from tests.sim.app import SET_KIND, MemoryApp

SIM_PARAMS = ConsensusParams(checkpoint_interval=4, max_block_txs=6, view_timeout_ms=400, max_clock_skew_ms=5000)
"""Small blocks and frequent checkpoints, so a short run crosses many heights and checkpoints."""

ReplicaFactory = Callable[..., Replica]


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
    """How many crash-and-restart events hit honest replicas before the network turns fair."""
    partitions: int = 0
    """How many temporary partitions split the network before it turns fair."""
    byzantine: tuple[tuple[str, str], ...] = ()
    """(validator id, behaviour name) for each Byzantine validator (see `tests.sim.byzantine`)."""
    cut: tuple[tuple[str, int, str], ...] = ()
    """(message type, view, receiver): such messages are always lost (to stage a precise scenario)."""
    txs: int = 12
    """How many txs clients submit."""
    fair_after_ms: int = 4000
    liveness_bound_ms: int = 90_000
    """Every tx must be committed everywhere this long after the network turns fair."""


@dataclass(frozen=True)
class Violation:
    """An invariant the run broke."""

    kind: str
    """`safety` (two honest replicas decided different blocks), `certificate` or `sync` (an unverifiable chain)."""
    detail: str


@dataclass
class SimNode:
    """One validator: its durable parts (chain, records) and its volatile ones (replica, mempool, timers)."""

    id: str
    key: PrivateKey
    app: MemoryApp
    replica: Replica | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    mempool: dict[bytes, Tx] = field(default_factory=dict)
    timers: dict[str, int] = field(default_factory=dict)
    """Timer name -> token of the armed instance (older tokens are stale)."""
    batch_scheduled: bool = False
    behaviour: Any = None
    """None for an honest node, else a Byzantine behaviour."""

    @property
    def is_up(self) -> bool:
        return self.replica is not None


@dataclass
class Outcome:
    """What one run found."""

    seed: int
    violations: list[Violation]
    is_live: bool
    end_ms: int
    heights: dict[str, int]
    max_log_size: int

    @property
    def is_safe(self) -> bool:
        return not any(v.kind == "safety" for v in self.violations)


class Simulator:
    """Runs n replicas over a seeded, simulated network."""

    def __init__(
        self,
        validators: int,
        seed: int,
        faults: Faults = Faults(),
        replica_factory: ReplicaFactory = Replica,
        params: ConsensusParams = SIM_PARAMS,
    ) -> None:
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
        byzantine = dict(faults.byzantine)
        from tests.sim.byzantine import make_behaviour

        for vid in self.genesis.validator_ids():
            app = MemoryApp(self.genesis, vid, clock=self._clock, verify_tx_signatures=False)
            behaviour = make_behaviour(byzantine[vid], self, vid) if vid in byzantine else None
            self.nodes[vid] = SimNode(vid, self.network.keys[vid], app, behaviour=behaviour)
        self.honest = [vid for vid in self.nodes if vid not in byzantine]
        self.submitted: dict[bytes, Tx] = {}
        self.decided: dict[int, tuple[str, bytes]] = {}
        self.violations: list[Violation] = []
        self.partition: list[set[str]] | None = None
        self.max_log_size = 0

    # -- scheduling ---------------------------------------------------------------

    def _clock(self) -> int:
        return self.genesis.genesis_time_ms + self.now

    def schedule(self, delay_ms: int, kind: str, *payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + max(delay_ms, 0), self._seq, kind, payload))

    def is_fair(self) -> bool:
        return self.now >= self.faults.fair_after_ms

    def _plan_faults(self) -> None:
        fair = self.faults.fair_after_ms
        for _ in range(self.faults.txs):
            self.schedule(self.rng.randrange(0, fair + 1000), "submit")
        for _ in range(self.faults.crashes):
            victim = self.rng.choice(self.honest)
            down_at = self.rng.randrange(0, max(fair - 200, 1))
            self.schedule(down_at, "crash", victim)
            self.schedule(self.rng.randrange(down_at + 1, fair), "restart", victim)
        for _ in range(self.faults.partitions):
            start = self.rng.randrange(0, max(fair - 200, 1))
            ids = list(self.nodes)
            self.rng.shuffle(ids)
            cut = self.rng.randrange(1, len(ids)) if len(ids) > 1 else 1
            self.schedule(start, "partition", (set(ids[:cut]), set(ids[cut:])))
            self.schedule(self.rng.randrange(start + 1, fair), "heal")

    # -- running ------------------------------------------------------------------

    def run(self) -> Outcome:
        """Run until every tx is committed by every honest replica, the bound passes, or safety breaks."""
        for node in self.nodes.values():
            self._boot(node)
        self._plan_faults()
        deadline = self.faults.fair_after_ms + self.faults.liveness_bound_ms
        is_live = False
        while self._queue:
            time, _, kind, payload = heapq.heappop(self._queue)
            if time > deadline:
                break
            self.now = time
            getattr(self, f"_on_{kind}")(*payload)
            if any(v.kind == "safety" for v in self.violations):
                break
            if self.is_fair() and self._is_all_committed():
                is_live = True
                break
        if not self._queue and self._is_all_committed():
            is_live = True  # every tx committed before the network turned fair, and nothing is left to happen
        heights = {vid: node.app.head()[0] for vid, node in self.nodes.items()}
        return Outcome(self.seed, list(self.violations), is_live, self.now, heights, self.max_log_size)

    def _is_all_committed(self) -> bool:
        if len(self.submitted) < self.faults.txs:
            return False
        return all(self.submitted.keys() <= self.nodes[vid].app.committed_ids for vid in self.honest)

    def _boot(self, node: SimNode) -> None:
        node.replica = self.replica_factory(self.genesis, node.id, node.key, node.app, list(node.records))
        self._perform(node, node.replica.start())

    # -- events -------------------------------------------------------------------

    def _on_submit(self) -> None:
        key = f"k{self.rng.randrange(8)}"
        tx = self.network.tx("channel-1", SET_KIND, {"key": key, "value": self.rng.randrange(1000)})
        self.submitted[tx.id] = tx
        for vid in self.nodes:
            self.schedule(self._delay(), "gossip", vid, tx.id)

    def _on_gossip(self, vid: str, tx_id: bytes) -> None:
        node = self.nodes[vid]
        if node.is_up and tx_id not in node.app.committed_ids:
            node.mempool[tx_id] = self.submitted[tx_id]
            self._offer_batch_soon(node)

    def _offer_batch_soon(self, node: SimNode) -> None:
        if node.mempool and not node.batch_scheduled:
            node.batch_scheduled = True
            self.schedule(5, "batch", node.id)

    def _on_batch(self, vid: str) -> None:
        node = self.nodes[vid]
        node.batch_scheduled = False
        if node.replica is not None and node.mempool:
            txs = list(node.mempool.values())[: self.genesis.consensus.max_block_txs]
            self._perform(node, node.replica.on_batch(txs))

    def _on_deliver(self, to: str, sender: str, data: bytes) -> None:
        node = self.nodes[to]
        if node.replica is None:
            return
        message = decode_message(data)
        if node.behaviour is not None:
            node.behaviour.observe(message)
        self._perform(node, node.replica.on_message(sender, message))
        self.max_log_size = max(self.max_log_size, node.replica.log_size)

    def _on_timer(self, vid: str, name: str, token: int) -> None:
        node = self.nodes[vid]
        if node.replica is None or node.timers.get(name) != token:
            return
        del node.timers[name]
        self._perform(node, node.replica.on_timeout(name))

    def _on_sync(self, vid: str) -> None:
        node = self.nodes[vid]
        if node.replica is None:
            return
        if not self.is_fair() and self.rng.random() < self.faults.drop:
            return
        source = max(self.nodes.values(), key=lambda n: (n.app.head()[0], n.id in self.honest))
        before = node.app.head()[0]
        try:
            height = node.app.sync_from(source.app)
        except (LedgerError, RuntimeError) as exc:
            self.violations.append(Violation("sync", f"seed {self.seed}: {vid} cannot sync from {source.id}: {exc}"))
            return
        if height == before:
            return
        for block in node.app.blocks[before:]:
            for tx in block.txs:
                node.mempool.pop(tx.id, None)
        self._perform(node, node.replica.on_synced())
        self._offer_batch_soon(node)

    def _on_crash(self, vid: str) -> None:
        node = self.nodes[vid]
        node.replica = None
        node.mempool.clear()
        node.timers.clear()
        node.batch_scheduled = False

    def _on_restart(self, vid: str) -> None:
        node = self.nodes[vid]
        if node.replica is not None:
            return
        self._boot(node)
        for tx_id in self.submitted:
            self.schedule(self._delay(), "gossip", vid, tx_id)

    def _on_partition(self, sides: tuple[set[str], set[str]]) -> None:
        self.partition = list(sides)

    def _on_heal(self) -> None:
        self.partition = None

    # -- actions ------------------------------------------------------------------

    def _perform(self, node: SimNode, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                node.records.append(action.record)
            elif isinstance(action, Send):
                self._send(node, action.to, action.message)
            elif isinstance(action, Broadcast):
                for vid in self.nodes:
                    if vid != node.id:
                        self._send(node, vid, action.message)
            elif isinstance(action, Decide):
                self._decide(node, action)
            elif isinstance(action, SetTimer):
                self._token += 1
                node.timers[action.name] = self._token
                self.schedule(action.delay_ms, "timer", node.id, action.name, self._token)
            elif isinstance(action, CancelTimer):
                node.timers.pop(action.name, None)
            elif isinstance(action, RequestSync):
                self.schedule(self._delay(), "sync", node.id)

    def _decide(self, node: SimNode, action: Decide) -> None:
        block, certificate = action.block, action.certificate
        if node.behaviour is None:
            block_hash = block.hash()
            first = self.decided.setdefault(block.height, (node.id, block_hash))
            if first[1] != block_hash:
                detail = f"seed {self.seed}: {first[0]} and {node.id} decided different blocks at height {block.height}"
                self.violations.append(Violation("safety", detail))
            try:
                verify_certificate(certificate, self.genesis, block_hash, block.height)
            except InvalidCertificate as exc:
                self.violations.append(Violation("certificate", f"seed {self.seed}: {node.id}: {exc}"))
        node.app.apply(block, certificate, verify=False)
        for tx in block.txs:
            node.mempool.pop(tx.id, None)
        self._offer_batch_soon(node)

    def _send(self, node: SimNode, to: str, message: Message) -> None:
        deliveries = [(to, message)] if node.behaviour is None else node.behaviour.rewrite(node, to, message)
        for target, outgoing in deliveries:
            self.deliver(node.id, target, outgoing)

    def deliver(self, sender: str, to: str, message: Message, claimed_sender: str | None = None) -> None:
        """Put `message` on the wire from `sender` to `to`, subject to the network's faults."""
        if (type(message).__name__, getattr(message, "view", -1), to) in self.faults.cut:
            return
        if not self.is_fair():
            if self.rng.random() < self.faults.drop:
                return
            if self.partition is not None and not any(sender in side and to in side for side in self.partition):
                return
        data = encode_message(message)
        copies = 2 if not self.is_fair() and self.rng.random() < self.faults.duplicate else 1
        for _ in range(copies):
            self.schedule(self._delay(), "deliver", to, claimed_sender or sender, data)

    def _delay(self) -> int:
        top = self.faults.max_delay_ms if self.is_fair() else self.faults.max_delay_ms * 10
        return self.rng.randrange(1, top + 1)
