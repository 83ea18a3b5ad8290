"""Transports: how sealed envelopes get from one node to another.

`Transport` is the interface the node and the consensus driver use: `send`
and `broadcast` are non-blocking (they seal the message and enqueue it), and
incoming frames go through `receive` to the handlers registered per kind.

`HttpTransport` is the real one. It keeps one httpx connection pool
(`httpx.AsyncHTTPTransport`: persistent connections; frames need none of a
client's cookies, redirects or auth, which cost as much CPU as the rest of a
request) and, per peer, a bounded queue drained by its own
sender task, so a slow or dead peer only ever fills its own queue. When a
queue is full the oldest envelope is dropped (and counted in the peer table):
for consensus traffic the newest messages matter most, and the protocol
recovers lost ones. Each sender task takes every envelope waiting (up to
`max_batch` / `max_batch_bytes`) and POSTs them as one frame to
`<peer address>/p2p` (`application/octet-stream`, a msgpack array of
envelopes). Network errors, 5xx answers and 429 (the peer limits frames
from this address for a moment, `p2p.inbox.SourceBudget`) are retried with
exponential backoff and full jitter; after `retries` retries, or on any other
4xx answer, the batch is dropped and counted. The node's `/p2p` route hands each request body
to `receive`.

`MemoryNetwork` / `MemoryTransport` (in `p2p.memory`) and the conformance
suite `check_transport` (in `p2p.conformance`) are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections import deque
from typing import Protocol

import httpx

from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from p2p.conformance import check_transport
from p2p.envelope import EnvelopeGate, Sealer, SeqCounter
from p2p.faults import LinkFaults
from p2p.inbox import Handler, Inbox, encode_frame
from p2p.memory import MemoryNetwork, MemoryTransport
from p2p.peers import PeerTable

DEFAULT_QUEUE_SIZE = 1024
"""Envelopes waiting per peer before the oldest is dropped."""

DEFAULT_MAX_BATCH = 256
"""Most envelopes in one POST."""

DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024
"""Most envelope bytes in one POST (a single larger envelope still goes alone)."""

DEFAULT_TIMEOUT_S = 5.0
"""Time limit of one POST (connect, write, read)."""

DEFAULT_CONNECT_TIMEOUT_S = 1.0
"""Time limit to open a connection to a peer."""

DEFAULT_RETRIES = 3
"""Retries of one batch after a network error or 5xx before it is dropped."""

BACKOFF_BASE_S = 0.05
"""First backoff delay after a failure."""

BACKOFF_MAX_S = 5.0
"""Longest backoff delay."""

P2P_PATH = "/p2p"
"""Route of a node's server that accepts frames."""

FRAME_HEADERS = {"content-type": "application/octet-stream"}


class Transport(Protocol):
    """What the node needs from a transport."""

    node_id: str
    """This node's validator id (the sender of everything it seals)."""
    peers: PeerTable
    inbox: Inbox

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def send(self, peer_id: str, kind: str, body: bytes) -> None:
        """Seal and enqueue one message for one peer; never blocks."""

    def broadcast(self, kind: str, body: bytes) -> None:
        """Seal once and enqueue for every peer; never blocks."""

    def register(self, kind: str, handler: Handler) -> None:
        """Deliver checked envelopes of `kind` to `handler`."""

    async def receive(self, frame: bytes, source: str | None = None) -> int:
        """Process one incoming frame from `source` (the sender's address, None in-process); returns how many
        envelopes reached a handler."""


def compute_backoff(
    failures: int, rng: random.Random, base_s: float = BACKOFF_BASE_S, max_s: float = BACKOFF_MAX_S
) -> float:
    """Delay before the next attempt after `failures` consecutive failures (exponential, full jitter)."""
    return rng.uniform(0, min(max_s, base_s * 2 ** min(failures - 1, 30)))


class SendQueue:
    """A bounded FIFO of encoded envelopes for one peer that drops its oldest when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[bytes] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, data: bytes) -> int:
        """Enqueue; return how many old envelopes were dropped to make room."""
        dropped = 0
        while len(self._items) >= self.capacity:
            self._items.popleft()
            dropped += 1
        self._items.append(data)
        self._ready.set()
        return dropped

    async def take(self, max_items: int, max_bytes: int) -> list[bytes]:
        """Wait for at least one envelope, then take as many as fit in one batch."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        batch = [self._items.popleft()]
        size = len(batch[0])
        while self._items and len(batch) < max_items and size + len(self._items[0]) <= max_bytes:
            size += len(self._items[0])
            batch.append(self._items.popleft())
        return batch


class HttpTransport:
    """Envelopes over HTTP POST, one bounded queue and sender task per peer."""

    def __init__(
        self,
        node_id: str,
        key: PrivateKey,
        genesis: Genesis,
        peers: PeerTable,
        *,
        gate: EnvelopeGate | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        seq: SeqCounter | None = None,
        verify: ssl.SSLContext | bool = True,
        faults: LinkFaults | None = None,
    ) -> None:
        """`verify`: how peers' HTTPS certificates are checked (an `ssl.SSLContext` with the network's CA);
        `faults`: the fault layer of a node made for fault tests, obeyed by every batch sent."""
        self.node_id = node_id
        self.chain_id = genesis.chain_id
        self.peers = peers
        self.inbox = Inbox(gate or EnvelopeGate(genesis, node_id), peers)
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.retries = retries
        self._sealer = Sealer(key, node_id, self.chain_id, seq)
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s).as_dict()
        self._pool: httpx.AsyncHTTPTransport | None = None
        self._queue_size = queue_size
        self._verify = verify
        self._queues = {peer_id: SendQueue(queue_size) for peer_id in peers.ids()}
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()
        self._faults = faults

    async def start(self) -> None:
        limits = httpx.Limits(
            max_connections=2 * len(self._queues) + 4, max_keepalive_connections=len(self._queues) + 2
        )
        self._pool = httpx.AsyncHTTPTransport(limits=limits, verify=self._verify)
        self._tasks = [asyncio.create_task(self._run_sender(peer_id)) for peer_id in self._queues]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    def add_peer(self, peer_id: str, address: str) -> None:
        """Send to a new peer from now on (a validator added by governance), with a queue and sender of its own."""
        if peer_id in self._queues or peer_id == self.node_id:
            return
        self.peers.add(peer_id, address)
        self._queues[peer_id] = SendQueue(self._queue_size)
        if self._pool is not None:
            self._tasks.append(asyncio.create_task(self._run_sender(peer_id)))

    def register(self, kind: str, handler: Handler) -> None:
        self.inbox.register(kind, handler)

    async def receive(self, frame: bytes, source: str | None = None) -> int:
        return await self.inbox.receive(frame, source)

    def pending(self, peer_id: str) -> int:
        """Envelopes waiting in the peer's queue."""
        return len(self._queues[peer_id])

    def send(self, peer_id: str, kind: str, body: bytes) -> None:
        queue = self._queues.get(peer_id)
        if queue is None:
            raise ValueError(f"{peer_id!r} is not a peer of {self.node_id!r}")
        self._enqueue(peer_id, queue, self._sealer.seal(peer_id, kind, body))

    def broadcast(self, kind: str, body: bytes) -> None:
        for peer_id, queue in self._queues.items():
            self._enqueue(peer_id, queue, self._sealer.seal(peer_id, kind, body))

    def _enqueue(self, peer_id: str, queue: SendQueue, data: bytes) -> None:
        dropped = queue.put(data)
        if dropped:
            self.peers.record_queue_drop(peer_id, dropped)

    async def _run_sender(self, peer_id: str) -> None:
        queue = self._queues[peer_id]
        failures = 0
        while True:
            batch = await queue.take(self.max_batch, self.max_batch_bytes)
            if self._faults is not None:
                taken = len(batch)
                batch, delay = self._faults.plan(peer_id, batch)
                if len(batch) < taken:
                    self.peers.record_queue_drop(peer_id, taken - len(batch))
                if not batch:
                    continue
                await asyncio.sleep(delay)
            for _attempt in range(self.retries + 1):
                outcome = await self._post(peer_id, batch)
                if outcome != "retry":
                    break
                failures += 1
                await asyncio.sleep(compute_backoff(failures, self._rng))
            else:
                outcome = "failed"
            if outcome == "sent":
                failures = 0
            else:
                self.peers.record_queue_drop(peer_id, len(batch))

    async def _post(self, peer_id: str, batch: list[bytes]) -> str:
        """POST one batch; return `sent`, `retry` (network error, 5xx, or 429: the peer is limiting frames from
        this address for a moment) or `failed` (any other 4xx)."""
        if self._pool is None:
            raise RuntimeError("HttpTransport used before start()")
        frame = encode_frame(batch)
        url = self.peers.get(peer_id).address.rstrip("/") + P2P_PATH
        request = httpx.Request(
            "POST", url, content=frame, headers=FRAME_HEADERS, extensions={"timeout": self._timeout}
        )
        started = time.perf_counter()
        try:
            response = await self._pool.handle_async_request(request)
            await response.aread()
            await response.aclose()
        except httpx.HTTPError as exc:
            self.peers.record_error(peer_id, f"{type(exc).__name__}: {exc}")
            return "retry"
        if response.status_code >= 300:
            self.peers.record_error(peer_id, f"HTTP {response.status_code} from {P2P_PATH}")
            return "retry" if response.status_code >= 500 or response.status_code == 429 else "failed"
        self.peers.record_sent(peer_id, len(batch), len(frame), (time.perf_counter() - started) * 1000)
        return "sent"


__all__ = [
    "HttpTransport",
    "MemoryNetwork",
    "MemoryTransport",
    "SendQueue",
    "Transport",
    "check_transport",
    "compute_backoff",
]
