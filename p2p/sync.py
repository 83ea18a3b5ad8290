"""Block sync: a node behind its peers fetches, verifies and applies the blocks it misses.

`BlockSync.sync(height, head_hash)` asks every trusted peer for its height,
then, while some peer is ahead, fetches the next batch of blocks with their
commit certificates from the highest such peer (prefetching the following
batch while the current one is applied: the loop runs between blocks, so the
next batch is asked for, served and read meanwhile). Each block must be the next height,
for our chain, link to our head by `prev_hash`, carry the tx root of its txs,
and hold a certificate with a quorum of good signatures from the validator
set of its height (`validators`: blocks are applied one by one, so the set of
the next height follows from the state the last one left). Only then is it
handed to `apply(block, certificate)` (the node re-executes it and checks the
state root). A block that fails any check is
never applied: the peer that served it is marked bad in the `PeerTable` and
sync moves on to another peer. An unreachable peer is skipped for this run.

The serving side is plain functions over the node's store (`encode_status`,
`read_blocks`), and `HttpSyncSource` fetches over HTTP:

    GET <peer>/p2p/status               -> {"height": int, "head_hash": bin}
    GET <peer>/p2p/blocks?from=a&to=b   -> [{"block": wire, "certificate": wire}, ...]

Both bodies are canonical msgpack. A peer may return fewer blocks than asked
(never more, never others). State sync (`StateSync`, in `p2p.snapshot`) uses
the same source for `GET <peer>/p2p/snapshot` and `/p2p/snapshot/<i>`. A peer
answers these reads to member nodes only: the source seals each request with
the node's key (`p2p.reads`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import msgpack

from ledger.block import Block, CommitCertificate, genesis_hash
from ledger.encoding import MAX_BYTES, decode, encode
from ledger.errors import InvalidBlock, LedgerError
from ledger.genesis import Genesis
from ledger.membership import ValidatorSet, get_genesis_membership
from p2p.errors import PeerUnavailable
from p2p.faults import LinkFaults
from p2p.peers import PeerTable
from p2p.reads import ReadSealer
from p2p.snapshot import SnapshotOffer, StateSync
from p2p.verify import Progress, call_hook, verify_block

DEFAULT_BATCH_BLOCKS = 200
"""Blocks asked for in one request."""

MAX_BLOCKS_PER_RESPONSE = 500
"""Most blocks a node serves in one response."""

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Most block bytes a node serves in one response (at least one block always goes)."""

MAX_ANSWER_BYTES = MAX_BYTES
"""Longest answer read from a peer: what the decoder would refuse is not even held in memory."""

DEFAULT_FETCH_TIMEOUT_S = 30.0
"""Time limit of one sync request."""

SyncedBlock = tuple[Block, CommitCertificate]
"""A block and the certificate that commits it."""

ApplyBlock = Callable[[Block, CommitCertificate], Awaitable[None] | None]
"""The node's hook that executes a verified block and stores it; raises `LedgerError` to refuse it."""


class SyncSource(Protocol):
    """Where block sync reads other nodes' chains."""

    async def fetch_status(self, peer: str) -> int:
        """The peer's committed height; raises `PeerUnavailable`."""

    async def fetch_blocks(self, peer: str, from_height: int, to_height: int) -> list[SyncedBlock]:
        """Blocks `from_height..to_height` (inclusive, possibly fewer); raises `PeerUnavailable` or `InvalidBlock`."""


class BlockReader(Protocol):
    """What serving blocks needs from the node's store (`ledger.store.Store` fits)."""

    @property
    def height(self) -> int: ...

    def get_block_bytes(self, height: int) -> bytes | None: ...

    def get_certificate(self, height: int) -> CommitCertificate | None: ...


# -- wire ------------------------------------------------------------------------


def encode_status(height: int, head_hash: bytes) -> bytes:
    return encode({"head_hash": head_hash, "height": height})


def decode_status(data: bytes) -> int:
    """The height in a status body; raises `InvalidBlock` when it is malformed."""
    wire = _decode_wire(data)
    height = wire.get("height") if isinstance(wire, dict) else None
    if type(height) is not int or height < 0:
        raise InvalidBlock("status must be a map with a non-negative integer height")
    return height


def encode_blocks(blocks: Iterable[SyncedBlock]) -> bytes:
    return encode([{"block": block.to_wire(), "certificate": cert.to_wire()} for block, cert in blocks])


def read_blocks(
    reader: BlockReader,
    from_height: int,
    to_height: int,
    max_blocks: int = MAX_BLOCKS_PER_RESPONSE,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> bytes:
    """The `/p2p/blocks` body for `from_height..to_height`, spliced from stored bytes, cut at the first gap or limit."""
    parts: list[bytes] = []
    size = 0
    height = max(from_height, 1)
    while height <= to_height and len(parts) < max_blocks:
        raw = reader.get_block_bytes(height)
        cert = reader.get_certificate(height)
        if raw is None or cert is None or (parts and size + len(raw) > max_bytes):
            break
        item = b"\x82" + msgpack.packb("block") + raw + msgpack.packb("certificate") + encode(cert.to_wire())
        parts.append(item)
        size += len(item)
        height += 1
    return msgpack.Packer().pack_array_header(len(parts)) + b"".join(parts)


def decode_blocks(data: bytes) -> list[SyncedBlock]:
    """Blocks and certificates of a `/p2p/blocks` body; raises `InvalidBlock` when it is malformed."""
    wire = _decode_wire(data)
    if not isinstance(wire, list):
        raise InvalidBlock("a blocks response must be a list")
    out = []
    for item in wire:
        if not isinstance(item, dict) or set(item) != {"block", "certificate"}:
            raise InvalidBlock("each entry of a blocks response is a map of block and certificate")
        out.append((Block.from_wire(item["block"]), CommitCertificate.from_wire(item["certificate"])))
    return out


def _decode_wire(data: bytes) -> Any:
    try:
        return decode(data)
    except LedgerError as exc:
        raise InvalidBlock(f"response is not canonical msgpack: {exc}") from exc


# -- block sync ------------------------------------------------------------------


@dataclass
class SyncReport:
    """What one sync run did."""

    start_height: int
    height: int
    """Height reached."""
    target: int
    """Highest height any peer reported."""
    blocks: int = 0
    txs: int = 0
    seconds: float = 0.0
    refused: dict[str, str] = field(default_factory=dict)
    """Peers marked bad during this run, with the reason."""


class BlockSync:
    """Fetches missing blocks from peers that are ahead, verifies them, and applies them in order."""

    def __init__(
        self,
        genesis: Genesis,
        source: SyncSource,
        peers: PeerTable,
        apply: ApplyBlock,
        *,
        batch_size: int = DEFAULT_BATCH_BLOCKS,
        progress: Progress | None = None,
        validators: Callable[[int], ValidatorSet] | None = None,
    ) -> None:
        self.genesis = genesis
        self.source = source
        self.peers = peers
        self.apply = apply
        self.validators = validators or get_genesis_membership(genesis).validator_set
        """The set that certifies a height, given the blocks applied so far."""
        self.batch_size = batch_size
        self.progress = progress

    async def poll_status(self) -> dict[str, int]:
        """Ask every trusted peer for its height (concurrently); unreachable peers are left out."""
        trusted = self.peers.trusted_ids()
        results = await asyncio.gather(*(self.source.fetch_status(p) for p in trusted), return_exceptions=True)
        heights = {}
        for peer_id, result in zip(trusted, results, strict=True):
            if isinstance(result, int):
                self.peers.note_height(peer_id, result)
                heights[peer_id] = result
            elif isinstance(result, LedgerError):
                self.peers.record_error(peer_id, str(result))
            elif isinstance(result, BaseException):
                raise result
        return heights

    async def sync(self, height: int, head_hash: bytes | None = None) -> SyncReport:
        """Catch up from our head (`height`, `head_hash`; genesis when 0) to the highest peer we can verify."""
        started = time.perf_counter()
        if head_hash is None:
            head_hash = genesis_hash(self.genesis)
        heights = await self.poll_status()
        report = SyncReport(height, height, max(heights.values(), default=height))
        skipped: set[str] = set()
        prefetch: tuple[str, int, asyncio.Task[list[SyncedBlock]]] | None = None
        try:
            while True:
                peer_id = self._pick_peer(heights, report.height, skipped)
                if peer_id is None:
                    break
                if prefetch is not None and (prefetch[0], prefetch[1]) == (peer_id, report.height + 1):
                    task = prefetch[2]
                else:
                    if prefetch is not None:
                        prefetch[2].cancel()
                    task = self._start_fetch(peer_id, report.height + 1, heights[peer_id])
                prefetch = None
                try:
                    blocks = await task
                except PeerUnavailable as exc:
                    self.peers.record_error(peer_id, str(exc))
                    skipped.add(peer_id)
                    continue
                except LedgerError as exc:
                    self._refuse(report, peer_id, f"malformed blocks response: {exc}")
                    continue
                if not blocks:
                    skipped.add(peer_id)
                    continue
                next_from = report.height + len(blocks) + 1
                if next_from <= heights[peer_id]:
                    prefetch = (peer_id, next_from, self._start_fetch(peer_id, next_from, heights[peer_id]))
                head_hash = await self._apply_batch(report, peer_id, blocks, head_hash)
        finally:
            if prefetch is not None:
                prefetch[2].cancel()
                with contextlib.suppress(BaseException):
                    await prefetch[2]
        report.seconds = time.perf_counter() - started
        return report

    def _pick_peer(self, heights: dict[str, int], height: int, skipped: set[str]) -> str | None:
        ahead = [
            peer_id
            for peer_id, peer_height in heights.items()
            if peer_height > height and peer_id not in skipped and self.peers.is_trusted(peer_id)
        ]
        if not ahead:
            return None
        return min(ahead, key=lambda p: (-heights[p], self.peers.get(p).rtt_ms or 0.0, p))

    def _start_fetch(self, peer_id: str, from_height: int, peer_height: int) -> asyncio.Task[list[SyncedBlock]]:
        to_height = min(from_height + self.batch_size - 1, peer_height)
        return asyncio.create_task(self.source.fetch_blocks(peer_id, from_height, to_height))

    async def _apply_batch(
        self, report: SyncReport, peer_id: str, blocks: list[SyncedBlock], head_hash: bytes
    ) -> bytes:
        """Verify and apply blocks in order; stop at the first bad one and mark the peer. Returns the new head hash."""
        for block, certificate in blocks:
            try:
                height = report.height + 1
                verify_block(self.genesis, block, certificate, height, head_hash, self.validators(height))
                await call_hook(self.apply(block, certificate))
            except LedgerError as exc:
                self._refuse(report, peer_id, f"block {report.height + 1}: {exc}")
                break
            head_hash = block.hash()
            report.height += 1
            report.blocks += 1
            report.txs += len(block.txs)
            if self.progress is not None:
                self.progress(report.height, report.target)
            await asyncio.sleep(0)
        return head_hash

    def _refuse(self, report: SyncReport, peer_id: str, reason: str) -> None:
        self.peers.mark_bad(peer_id, reason)
        report.refused[peer_id] = reason


# -- HTTP source -----------------------------------------------------------------


class HttpSyncSource:
    """Fetches status, blocks and snapshots from peers' `/p2p/...` routes with one pooled httpx client."""

    def __init__(
        self,
        peers: PeerTable,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_FETCH_TIMEOUT_S,
        verify: ssl.SSLContext | bool = True,
        seal: ReadSealer | None = None,
        faults: LinkFaults | None = None,
    ) -> None:
        """`verify`: how peers' HTTPS certificates are checked (when no `client` is given); `seal`: how this
        node seals its reads (without one, peers answer 401); `faults`: the fault layer of a node made for fault
        tests (no fetch from a peer whose link it cut)."""
        self.peers = peers
        self.seal = seal
        self._faults = faults
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=2.0), verify=verify)
        self._owns_client = client is None

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def get(self, peer: str, path: str, params: dict[str, int] | None = None) -> bytes | None:
        """GET a peer route; the body, None on 404, or `PeerUnavailable` on any other failure, including
        a body longer than `MAX_ANSWER_BYTES` (read no further than that)."""
        if self._faults is not None and self._faults.is_cut(peer):
            raise PeerUnavailable(f"{peer}: the link is cut by the fault layer")
        url = self.peers.get(peer).address.rstrip("/") + path
        headers = {} if self.seal is None else self.seal.headers(peer, path, params)
        started = time.perf_counter()
        try:
            async with self._client.stream("GET", url, params=params, headers=headers) as response:
                if response.status_code == 404:
                    return None
                if response.status_code >= 300:
                    raise PeerUnavailable(f"{peer}: HTTP {response.status_code} from {path}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise PeerUnavailable(f"{peer}: answer from {path} is longer than {MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"{peer}: {type(exc).__name__}: {exc}") from exc
        self.peers.record_success(peer, (time.perf_counter() - started) * 1000)
        return bytes(body)

    async def fetch_status(self, peer: str) -> int:
        body = await self.get(peer, "/p2p/status")
        if body is None:
            raise PeerUnavailable(f"{peer} serves no /p2p/status")
        return decode_status(body)

    async def fetch_blocks(self, peer: str, from_height: int, to_height: int) -> list[SyncedBlock]:
        body = await self.get(peer, "/p2p/blocks", {"from": from_height, "to": to_height})
        return [] if body is None else decode_blocks(body)

    async def fetch_manifest(self, peer: str) -> bytes | None:
        return await self.get(peer, "/p2p/snapshot")

    async def fetch_chunk(self, peer: str, index: int) -> bytes:
        body = await self.get(peer, f"/p2p/snapshot/{index}")
        if body is None:
            raise PeerUnavailable(f"{peer} no longer serves snapshot chunk {index}")
        return body


__all__ = [
    "BlockSync",
    "HttpSyncSource",
    "Progress",
    "SnapshotOffer",
    "StateSync",
    "SyncReport",
    "SyncSource",
    "decode_blocks",
    "decode_status",
    "encode_blocks",
    "encode_status",
    "read_blocks",
]
