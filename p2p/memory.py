"""An in-memory network for tests: seeded, reproducible, and able to misbehave.

`MemoryNetwork` connects `MemoryTransport`s in one event loop. Every frame a
transport sends goes through the same sealing and, on arrival, the same
`Inbox` and `EnvelopeGate` as over HTTP. The network draws every decision
from one `random.Random(seed)` in the order frames are sent, so a test run
with the same seed sees the same drops, duplicates and reorderings:

- `drop_rate`: chance a frame is lost;
- `duplicate_rate`: chance a frame is delivered twice (the gate must drop the copy);
- `reorder`: each frame may overtake up to this many frames queued before it;
- `partition(...)` / `heal()`: cut and restore links between groups of nodes;
- `set_down(node, True)`: every frame to or from a node is lost.

Each destination has its own delivery queue and task, so a handler that
stalls one node never holds up another. `settle()` waits until no frame is in
flight.

`MemoryChain` and `MemorySyncSource` do the same for block and state sync:
peers serve chains and snapshots from memory, through the real wire encodings.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
from collections.abc import Iterable, Sequence
from typing import Protocol

from ledger.block import Block, CommitCertificate
from ledger.encoding import encode
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from p2p.envelope import EnvelopeGate, Sealer, SeqCounter
from p2p.errors import PeerUnavailable
from p2p.inbox import Handler, Inbox, encode_frame
from p2p.peers import PeerTable
from p2p.sync import BlockReader, SyncedBlock, decode_blocks, decode_status, encode_status, read_blocks


class MemoryNetwork:
    """The wires between `MemoryTransport`s."""

    def __init__(
        self,
        genesis: Genesis,
        seed: int = 0,
        *,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        reorder: int = 0,
    ) -> None:
        self.genesis = genesis
        self.seed = seed
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate
        self.reorder = reorder
        self.delivered = 0
        """Frames handed to a destination's inbox."""
        self.lost = 0
        """Frames lost to `drop_rate`, partitions or down nodes."""
        self._rng = random.Random(seed)
        self._nodes: dict[str, MemoryTransport] = {}
        self._group: dict[str, int] = {}
        self._down: set[str] = set()
        self._boots = 0
        self._posted = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def transport(self, node_id: str, key: PrivateKey, *, gate: EnvelopeGate | None = None) -> MemoryTransport:
        """Attach (or re-attach after a simulated restart) the transport of `node_id`."""
        self._boots += 1
        transport = MemoryTransport(self, node_id, key, gate=gate, seq=SeqCounter(clock_ms=lambda: self._boots))
        self._nodes[node_id] = transport
        return transport

    @property
    def nodes(self) -> dict[str, MemoryTransport]:
        """The attached transports by node id."""
        return dict(self._nodes)

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups; unlisted nodes form one more group."""
        self._group = {node: index for index, group in enumerate(groups, start=1) for node in group}

    def heal(self) -> None:
        self._group = {}

    def set_down(self, node_id: str, down: bool) -> None:
        if down:
            self._down.add(node_id)
        else:
            self._down.discard(node_id)

    def is_linked(self, src: str, dst: str) -> bool:
        if src in self._down or dst in self._down:
            return False
        return self._group.get(src, 0) == self._group.get(dst, 0)

    def post(self, src: str, dst: str, frame: bytes) -> None:
        """Carry one frame from `src` to `dst`, subject to the network's faults."""
        target = self._nodes.get(dst)
        if target is None or not self.is_linked(src, dst) or self._rng.random() < self.drop_rate:
            self.lost += 1
            return
        copies = 2 if self._rng.random() < self.duplicate_rate else 1
        for _ in range(copies):
            self._posted += 1
            target.enqueue(self._posted + self._rng.randint(0, self.reorder), self._posted, frame)
            self._in_flight += 1
            self._idle.clear()

    def frame_done(self) -> None:
        self.delivered += 1
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def settle(self) -> None:
        """Wait until every frame sent so far (and every frame those caused) has been handled."""
        while self._in_flight:
            await self._idle.wait()
            await asyncio.sleep(0)


class MemoryTransport:
    """One node's end of a `MemoryNetwork`; sends one envelope per frame."""

    def __init__(
        self,
        network: MemoryNetwork,
        node_id: str,
        key: PrivateKey,
        *,
        gate: EnvelopeGate | None = None,
        seq: SeqCounter | None = None,
    ) -> None:
        self.node_id = node_id
        self.network = network
        self.chain_id = network.genesis.chain_id
        self.peers = PeerTable.from_genesis(network.genesis, node_id)
        self.inbox = Inbox(gate or EnvelopeGate(network.genesis, node_id), self.peers)
        self._sealer = Sealer(key, node_id, self.chain_id, seq)
        self._heap: list[tuple[int, int, bytes]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run_deliveries())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._heap:
            heapq.heappop(self._heap)
            self.network.frame_done()

    def register(self, kind: str, handler: Handler) -> None:
        self.inbox.register(kind, handler)

    async def receive(self, frame: bytes, source: str | None = None) -> int:
        return await self.inbox.receive(frame, source)

    def send(self, peer_id: str, kind: str, body: bytes) -> None:
        if peer_id not in self.peers:
            raise ValueError(f"{peer_id!r} is not a peer of {self.node_id!r}")
        self._post(peer_id, encode_frame([self._sealer.seal(peer_id, kind, body)]))

    def broadcast(self, kind: str, body: bytes) -> None:
        for peer_id in self.peers.ids():
            self._post(peer_id, encode_frame([self._sealer.seal(peer_id, kind, body)]))

    def _post(self, peer_id: str, frame: bytes) -> None:
        self.peers.record_sent(peer_id, 1, len(frame), 0.0)
        self.network.post(self.node_id, peer_id, frame)

    def enqueue(self, order: int, tiebreak: int, frame: bytes) -> None:
        """Called by the network: queue a frame for delivery in `order`."""
        heapq.heappush(self._heap, (order, tiebreak, frame))
        self._ready.set()

    async def _run_deliveries(self) -> None:
        while True:
            while not self._heap:
                self._ready.clear()
                await self._ready.wait()
            _, _, frame = heapq.heappop(self._heap)
            try:
                await self.inbox.receive(frame)
            finally:
                self.network.frame_done()


class SnapshotServer(Protocol):
    """What a node serves for state sync (`SnapshotOffer` fits)."""

    def manifest_bytes(self) -> bytes: ...

    def chunk_bytes(self, index: int) -> bytes: ...


class MemoryChain:
    """Certified blocks held in memory and served like a store (a `BlockReader`)."""

    def __init__(self, blocks: Sequence[SyncedBlock] = ()) -> None:
        self._blocks = [(encode(block.to_wire()), certificate) for block, certificate in blocks]

    @property
    def height(self) -> int:
        return len(self._blocks)

    def append(self, block: Block, certificate: CommitCertificate) -> None:
        self._blocks.append((encode(block.to_wire()), certificate))

    def get_block_bytes(self, height: int) -> bytes | None:
        return self._blocks[height - 1][0] if 1 <= height <= len(self._blocks) else None

    def get_certificate(self, height: int) -> CommitCertificate | None:
        return self._blocks[height - 1][1] if 1 <= height <= len(self._blocks) else None


class MemorySyncSource:
    """Block sync and state sync requests from `node_id` to the chains and snapshots its peers serve.

    Requests go through the same encoders and decoders as over HTTP; a peer
    that serves nothing, or that the network has cut off or marked down,
    raises `PeerUnavailable`.
    """

    def __init__(self, network: MemoryNetwork, node_id: str) -> None:
        self.network = network
        self.node_id = node_id
        self.chains: dict[str, BlockReader] = {}
        """What each peer serves for block sync."""
        self.snapshots: dict[str, SnapshotServer] = {}
        """What each peer serves for state sync (absent: no snapshot offered)."""
        self.requests = 0
        """Requests made, answered or not."""

    def _reach(self, peer: str) -> None:
        self.requests += 1
        if not self.network.is_linked(self.node_id, peer):
            raise PeerUnavailable(f"{peer} is not reachable from {self.node_id}")

    def _chain(self, peer: str) -> BlockReader:
        self._reach(peer)
        chain = self.chains.get(peer)
        if chain is None:
            raise PeerUnavailable(f"{peer} serves no blocks")
        return chain

    async def fetch_status(self, peer: str) -> int:
        chain = self._chain(peer)
        return decode_status(encode_status(chain.height, b""))

    async def fetch_blocks(self, peer: str, from_height: int, to_height: int) -> list[SyncedBlock]:
        return decode_blocks(read_blocks(self._chain(peer), from_height, to_height))

    async def fetch_manifest(self, peer: str) -> bytes | None:
        self._reach(peer)
        snapshot = self.snapshots.get(peer)
        return None if snapshot is None else snapshot.manifest_bytes()

    async def fetch_chunk(self, peer: str, index: int) -> bytes:
        self._reach(peer)
        snapshot = self.snapshots.get(peer)
        if snapshot is None:
            raise PeerUnavailable(f"{peer} offers no snapshot")
        try:
            return snapshot.chunk_bytes(index)
        except IndexError as exc:
            raise PeerUnavailable(f"{peer}: {exc}") from exc
