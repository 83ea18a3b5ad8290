"""A tiny synchronous driver for unit tests: n replicas, messages delivered in order, timers fired by hand.

`muted` validators send nothing; `drop` (sender, receiver, message) -> bool loses chosen messages, to stage
a precise schedule.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.actions import Action, Broadcast, Decide, Persist, RequestSync, Send, SetTimer
from consensus.messages import Message, decode_message, encode_message
from consensus.replica import VIEW_TIMER, Replica
from ledger.genesis import ConsensusParams
from ledger.tx import Tx
from tests.helpers.builders import Network, make_network
from tests.sim.app import SET_KIND, MemoryApp


@dataclass
class Cluster:
    """Replicas wired to each other through a FIFO queue; `muted` validators send nothing."""

    network: Network
    apps: dict[str, MemoryApp] = field(default_factory=dict)
    replicas: dict[str, Replica] = field(default_factory=dict)
    records: dict[str, list[dict]] = field(default_factory=dict)
    timers: dict[str, dict[str, int]] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)
    syncs: list[tuple[str, int]] = field(default_factory=list)
    queue: deque[tuple[str, str, bytes]] = field(default_factory=deque)
    drop: Callable[[str, str, Message], bool] = lambda sender, to, message: False

    @classmethod
    def make(cls, validators: int, params: ConsensusParams | None = None) -> Cluster:
        cluster = cls(make_network(validators=validators, consensus=params or ConsensusParams()))
        for vid in cluster.network.genesis.validator_ids():
            cluster.apps[vid] = MemoryApp(cluster.network.genesis, vid)
            cluster.records[vid] = []
            cluster.timers[vid] = {}
            cluster.boot(vid)
        return cluster

    def boot(self, vid: str, replica_class: type[Replica] = Replica) -> None:
        genesis, key = self.network.genesis, self.network.keys[vid]
        self.replicas[vid] = replica_class(genesis, vid, key, self.apps[vid], list(self.records[vid]))
        self.perform(vid, self.replicas[vid].start())

    def txs(self, count: int) -> list[Tx]:
        return [self.network.tx("channel-1", SET_KIND, {"key": f"k{i}", "value": i}) for i in range(count)]

    def perform(self, vid: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self.records[vid].append(action.record)
            elif isinstance(action, Decide):
                self.apps[vid].apply(action.block, action.certificate)
            elif isinstance(action, SetTimer):
                self.timers[vid][action.name] = action.delay_ms
            elif isinstance(action, RequestSync):
                self.syncs.append((vid, action.height))
            elif isinstance(action, Send | Broadcast) and vid not in self.muted:
                targets = [action.to] if isinstance(action, Send) else [v for v in self.replicas if v != vid]
                for target in targets:
                    if not self.drop(vid, target, action.message):
                        self.queue.append((vid, target, encode_message(action.message)))

    def inject(self, sender: str, to: str, message: Message) -> list[Action]:
        return self.replicas[to].on_message(sender, message)

    def settle(self) -> None:
        """Deliver until no message is left in flight."""
        while self.queue:
            sender, target, data = self.queue.popleft()
            self.perform(target, self.replicas[target].on_message(sender, decode_message(data)))

    def offer(self, txs: list[Tx]) -> None:
        for vid, replica in self.replicas.items():
            self.perform(vid, replica.on_batch(txs))
        self.settle()

    def time_out(self, vids: list[str] | None = None) -> None:
        """Let the view timer of `vids` expire twice: the first re-sends their part, the second suspects."""
        self.fire(VIEW_TIMER, vids)
        self.fire(VIEW_TIMER, vids)

    def fire(self, name: str, vids: list[str] | None = None) -> None:
        for vid in vids or list(self.replicas):
            self.perform(vid, self.replicas[vid].on_timeout(name))
        self.settle()
