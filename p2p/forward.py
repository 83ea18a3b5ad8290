"""Forwarding txs from a follower: a node that does not vote hands its clients' txs to a validator.

Validators open only envelopes that other validators sealed, so a follower
cannot gossip. It sends what its API admitted to the public tx route of a
validator instead (`POST /v1/txs`, a msgpack array of encoded txs), as any
client could: the txs carry their signers' signatures, and the validator
admits and gossips them like its own clients' txs. Batches wait in one
bounded queue (the oldest dropped when it is full; the client sees its tx
expire and sends it again); each is offered to the trusted peers in turn,
starting after the last one that took a batch, until one answers 2xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque

import httpx
import msgpack

from p2p.peers import PeerTable

TXS_PATH = "/v1/txs"
"""A node's route for batches of signed txs."""

MAX_QUEUED_BATCHES = 256
"""Batches waiting to be forwarded before the oldest is dropped."""

FORWARD_TIMEOUT_S = 10.0
"""Time limit of one forwarding request."""

RETRY_DELAY_S = 1.0
"""Pause after no peer took a batch, before the next try."""

log = logging.getLogger(__name__)


def encode_tx_batch(encoded_txs: list[bytes]) -> bytes:
    """A msgpack array of the encoded txs, as `POST /v1/txs` reads it (each tx is a msgpack map already)."""
    return msgpack.Packer().pack_array_header(len(encoded_txs)) + b"".join(encoded_txs)


class TxForwarder:
    """Sends batches of encoded txs to a validator's API, one at a time, from one background task."""

    def __init__(self, peers: PeerTable, verify: ssl.SSLContext | bool = True) -> None:
        """`verify`: how the validators' HTTPS certificates are checked."""
        self.peers = peers
        self.verify = verify
        self.forwarded = 0
        """Txs a validator took."""
        self.dropped = 0
        """Txs dropped because the queue was full."""
        self._queue: deque[list[bytes]] = deque()
        self._ready = asyncio.Event()
        self._next = 0

    def forward(self, encoded_txs: list[bytes]) -> None:
        """Queue one batch; never blocks."""
        while len(self._queue) >= MAX_QUEUED_BATCHES:
            self.dropped += len(self._queue.popleft())
        self._queue.append(encoded_txs)
        self._ready.set()

    async def run(self) -> None:
        """Forward queued batches until cancelled."""
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S, verify=self.verify) as client:
            while True:
                while not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                batch = self._queue[0]
                if await self._offer(client, encode_tx_batch(batch)):
                    self._queue.popleft()
                    self.forwarded += len(batch)
                else:
                    await asyncio.sleep(RETRY_DELAY_S)

    async def _offer(self, client: httpx.AsyncClient, body: bytes) -> bool:
        """Offer `body` to each trusted peer in turn; True once one took it."""
        ids = self.peers.trusted_ids()
        for step in range(len(ids)):
            peer_id = ids[(self._next + step) % len(ids)]
            url = self.peers.get(peer_id).address.rstrip("/") + TXS_PATH
            with contextlib.suppress(httpx.HTTPError):
                response = await client.post(url, content=body, headers={"content-type": "application/msgpack"})
                if response.is_success:
                    self._next = (self._next + step) % len(ids)
                    return True
                log.warning("forwarding txs: %s answered %d", peer_id, response.status_code)
        return False
