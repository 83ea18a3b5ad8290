"""State sync: load a certified snapshot of the world state instead of replaying every block.

A node serving state sync offers one frozen state (`SnapshotOffer`), at a
block it has committed, cut into chunks of at most `chunk_entries` entries in
key order:

    GET <peer>/p2p/snapshot       -> manifest {height, block, certificate, chunks, entries, chunk_entries[, epochs]}
    GET <peer>/p2p/snapshot/<i>   -> [[key, value], ...] (chunk i, 0-based)

A 404 on `/p2p/snapshot` means the peer offers none. Both bodies are
canonical msgpack.

When the validator set has changed since genesis, the manifest carries the
chain of set changes up to its block (`epochs`): for each change, the new set
and the certified header of the last block before it, whose `validators_hash`
names that set. A syncing node that knows only genesis checks each link's
certificate against the set before it, so it knows which set certifies the
snapshot's block (`verify_epoch_links`); after the entries check out, the
membership they hold must name that same set at that height, so a manifest
that leaves a change out is refused.

`StateSync.sync` asks every trusted peer for its manifest, keeps those whose
block carries a good certificate, and tries the highest first: it fetches
every chunk, checks that keys strictly increase across chunks (no entry twice)
and that the entry count matches, and recomputes the state commitment
(`ledger.commitment`) over all entries. Only if it equals the block's
`state_root` does it call `load(block, certificate, entries)`; otherwise the
peer is marked bad and the next one is tried. Chunks wait for that verdict in
a spool file (`ChunkSpool`), not in memory: a peer's manifest decides how
much it sends, never how much memory this node spends (the state tree's root
is built from spooled leaves too, `ledger.commitment.TreeBuilder`). When no peer offers a usable
snapshot it returns None, and the node falls back to block sync.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, Protocol

import msgpack
import msgspec

from ledger.block import Block, CommitCertificate
from ledger.commitment import TreeBuilder
from ledger.encoding import decode, encode
from ledger.epochs import MAX_EPOCH_LINKS, EpochLink, verify_epoch_links
from ledger.errors import InvalidBlock, LedgerError
from ledger.genesis import Genesis
from ledger.membership import (
    MEMBERSHIP_KEY,
    decode_membership,
)
from ledger.state import StateReader
from ledger.strict import convert_strict
from p2p.errors import InvalidSnapshot, PeerUnavailable
from p2p.peers import PeerTable
from p2p.verify import Progress, call_hook, verify_certified_block

DEFAULT_CHUNK_ENTRIES = 20_000
"""State entries per chunk served."""

MAX_CHUNK_ENTRIES = 200_000
"""Largest chunk size a syncing node accepts in a manifest."""

LoadState = Callable[[Block, CommitCertificate, Iterator[tuple[bytes, bytes]]], Awaitable[None] | None]
"""The node's hook that replaces its state by verified entries at `block` (e.g. `Store.load_state`)."""


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds: the certified block whose state it is, and how it is chunked."""

    height: int
    block: Block
    """The block whose `state_root` the entries must match."""
    certificate: CommitCertificate
    chunks: int
    entries: int
    """Total number of state entries."""
    chunk_entries: int
    """Entries per chunk (the last may hold fewer)."""
    epochs: tuple[EpochLink, ...] = ()
    """The validator set changes up to `block`, oldest first (none while the genesis set certifies it)."""

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "block": self.block.to_wire(),
            "certificate": self.certificate.to_wire(),
            "chunk_entries": self.chunk_entries,
            "chunks": self.chunks,
            "entries": self.entries,
            "height": self.height,
        }
        if self.epochs:
            wire["epochs"] = [link.to_wire() for link in self.epochs]
        return wire


def encode_manifest(manifest: Manifest) -> bytes:
    return encode(manifest.to_wire())


Count = Annotated[int, msgspec.Meta(ge=0)]
"""A non-negative integer."""


class ManifestWire(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A manifest as a peer sends it: exactly these keys, the counts non-negative integers."""

    height: Count
    block: Any
    """A block's wire map (`Block.from_wire`)."""
    certificate: Any
    """A commit certificate's wire map (`CommitCertificate.from_wire`)."""
    chunks: Count
    entries: Count
    chunk_entries: Count
    epochs: list[Any] = msgspec.field(default_factory=list)
    """The certified validator-set changes since genesis (`EpochLink.from_wire` each); absent in older manifests."""


def decode_manifest(data: bytes) -> Manifest:
    """Parse a manifest and check that its numbers agree; raises `InvalidSnapshot`."""
    wire = convert_strict(_decode(data), ManifestWire, InvalidSnapshot, "snapshot manifest")
    try:
        block, certificate = Block.from_wire(wire.block), CommitCertificate.from_wire(wire.certificate)
    except InvalidBlock as exc:
        raise InvalidSnapshot(f"manifest block: {exc}") from exc
    links = wire.epochs
    if len(links) > MAX_EPOCH_LINKS:
        raise InvalidSnapshot(f"a manifest carries at most {MAX_EPOCH_LINKS} epoch links")
    try:
        epochs = tuple(EpochLink.from_wire(link) for link in links)
    except InvalidBlock as exc:
        raise InvalidSnapshot(f"manifest epoch link: {exc}") from exc
    manifest = Manifest(wire.height, block, certificate, wire.chunks, wire.entries, wire.chunk_entries, epochs)
    if manifest.height != block.height:
        raise InvalidSnapshot(f"manifest height {manifest.height} is not its block's {block.height}")
    if not 1 <= manifest.chunk_entries <= MAX_CHUNK_ENTRIES:
        raise InvalidSnapshot(f"chunk size {manifest.chunk_entries} outside 1..{MAX_CHUNK_ENTRIES}")
    if manifest.chunks != compute_chunk_count(manifest.entries, manifest.chunk_entries):
        raise InvalidSnapshot(f"{manifest.chunks} chunks cannot hold {manifest.entries} entries")
    return manifest


def compute_chunk_count(entries: int, chunk_entries: int) -> int:
    return -(-entries // chunk_entries)


def encode_chunk(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A chunk body: a msgpack array of [key, value] bin pairs (canonical as it is, so packed directly)."""
    return msgpack.packb([[key, value] for key, value in entries], use_bin_type=True)


def decode_chunk(data: bytes) -> list[tuple[bytes, bytes]]:
    """Entries of a chunk body; raises `InvalidSnapshot` when it is not a list of [key, value] bins."""
    try:
        wire = msgpack.unpackb(data, raw=False, use_list=False, max_array_len=MAX_CHUNK_ENTRIES)
    except Exception as exc:  # msgpack raises several unrelated types
        raise InvalidSnapshot(f"chunk is not msgpack: {exc}") from exc
    if type(wire) is not tuple:
        raise InvalidSnapshot("a chunk is a list of [key, value] pairs")
    for item in wire:
        if type(item) is not tuple or len(item) != 2 or type(item[0]) is not bytes or type(item[1]) is not bytes:
            raise InvalidSnapshot("a chunk entry is a [key, value] pair of bytes")
    return list(wire)


def _decode(data: bytes) -> Any:
    try:
        return decode(data)
    except LedgerError as exc:
        raise InvalidSnapshot(f"not canonical msgpack: {exc}") from exc


class SnapshotOffer:
    """The serving side: one frozen state at a committed block, served in chunks.

    Counting the entries takes one scan, so the node builds an offer when a
    peer first asks and keeps it while its `reader` (a store snapshot) lives.
    Chunks are read on demand; consecutive requests continue one scan.
    """

    def __init__(
        self,
        reader: StateReader,
        block: Block,
        certificate: CommitCertificate,
        chunk_entries: int = DEFAULT_CHUNK_ENTRIES,
        epochs: tuple[EpochLink, ...] = (),
    ) -> None:
        self._reader = reader
        entries = sum(1 for _ in reader.scan_state(b""))
        chunks = compute_chunk_count(entries, chunk_entries)
        self.manifest = Manifest(block.height, block, certificate, chunks, entries, chunk_entries, epochs)
        self._cursor: Iterator[tuple[bytes, bytes]] = iter(())
        self._next_index = -1

    def manifest_bytes(self) -> bytes:
        return encode_manifest(self.manifest)

    def read_chunk(self, index: int) -> list[tuple[bytes, bytes]]:
        """Entries of chunk `index`; raises `IndexError` outside 0..chunks-1."""
        if not 0 <= index < self.manifest.chunks:
            raise IndexError(f"snapshot has {self.manifest.chunks} chunks, no chunk {index}")
        size = self.manifest.chunk_entries
        if index < self._next_index or self._next_index < 0:
            self._cursor, self._next_index = self._reader.scan_state(b""), 0
        skip = (index - self._next_index) * size
        if skip:
            next(islice(self._cursor, skip, skip), None)
        self._next_index = index + 1
        return list(islice(self._cursor, size))

    def chunk_bytes(self, index: int) -> bytes:
        """The `/p2p/snapshot/<index>` body; raises `IndexError` outside 0..chunks-1."""
        return encode_chunk(self.read_chunk(index))


class SnapshotSource(Protocol):
    """Where state sync reads snapshots (`HttpSyncSource` fits)."""

    async def fetch_manifest(self, peer: str) -> bytes | None:
        """The peer's manifest body, None when it offers no snapshot; raises `PeerUnavailable`."""

    async def fetch_chunk(self, peer: str, index: int) -> bytes:
        """One chunk body; raises `PeerUnavailable`."""


class StateSync:
    """Fetches, verifies and loads the highest certified snapshot any peer offers."""

    def __init__(
        self,
        genesis: Genesis,
        source: SnapshotSource,
        peers: PeerTable,
        load: LoadState,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.genesis = genesis
        self.source = source
        self.peers = peers
        self.load = load
        self.progress = progress
        self.refused: dict[str, str] = {}
        """Peers marked bad by state sync, with the reason."""

    async def sync(self, min_height: int = 0) -> Manifest | None:
        """Load a verified snapshot above `min_height`; None when no peer offers one that checks out."""
        for peer_id, manifest in await self.poll_manifests(min_height):
            with ChunkSpool() as spool:
                try:
                    await self._fetch_verified(peer_id, manifest, spool)
                except PeerUnavailable as exc:
                    self.peers.record_error(peer_id, str(exc))
                    continue
                except InvalidBlock as exc:
                    self._refuse(peer_id, f"snapshot at {manifest.height}: {exc}")
                    continue
                await call_hook(self.load(manifest.block, manifest.certificate, spool.iter_entries()))
            return manifest
        return None

    async def poll_manifests(self, min_height: int = 0) -> list[tuple[str, Manifest]]:
        """Certified manifests above `min_height` from trusted peers, highest first."""
        trusted = self.peers.trusted_ids()
        results = await asyncio.gather(*(self.source.fetch_manifest(p) for p in trusted), return_exceptions=True)
        offers = []
        for peer_id, result in zip(trusted, results, strict=True):
            if isinstance(result, PeerUnavailable):
                self.peers.record_error(peer_id, str(result))
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                try:
                    manifest = decode_manifest(result)
                    validators = verify_epoch_links(self.genesis, manifest.height, manifest.epochs)
                    verify_certified_block(self.genesis, manifest.block, manifest.certificate, validators)
                except InvalidBlock as exc:
                    self._refuse(peer_id, f"snapshot manifest: {exc}")
                    continue
                self.peers.note_height(peer_id, manifest.height)
                if manifest.height > min_height:
                    offers.append((peer_id, manifest))
        return sorted(offers, key=lambda offer: (-offer[1].height, offer[0]))

    async def _fetch_verified(self, peer_id: str, manifest: Manifest, spool: ChunkSpool) -> None:
        """Spool every chunk of the peer's snapshot, checked against the manifest's certified state root."""
        with TreeBuilder() as tree:
            last_key: bytes | None = None
            membership: bytes | None = None
            count = 0
            for index in range(manifest.chunks):
                data = await self.source.fetch_chunk(peer_id, index)
                entries = decode_chunk(data)
                if not entries or len(entries) > manifest.chunk_entries:
                    size = manifest.chunk_entries
                    raise InvalidSnapshot(f"chunk {index} holds {len(entries)} entries, chunk size {size}")
                for key, value in entries:
                    if last_key is not None and key <= last_key:
                        raise InvalidSnapshot(f"chunk {index}: keys out of order or repeated")
                    tree.add(key, value)
                    last_key = key
                    if key == MEMBERSHIP_KEY.encode():
                        membership = value
                count += len(entries)
                spool.write(data)
                if self.progress is not None:
                    self.progress(index + 1, manifest.chunks)
            if count != manifest.entries:
                raise InvalidSnapshot(f"{count} entries, manifest says {manifest.entries}")
            root = tree.finish()
        if root != manifest.block.header.state_root:
            raise InvalidSnapshot("entries do not match the certified state root")
        in_state = decode_membership(membership, self.genesis).validator_set(manifest.height)
        if in_state != verify_epoch_links(self.genesis, manifest.height, manifest.epochs):
            raise InvalidSnapshot("the manifest's validator set changes are not those its state holds")

    def _refuse(self, peer_id: str, reason: str) -> None:
        self.peers.mark_bad(peer_id, reason)
        self.refused[peer_id] = reason


class ChunkSpool:
    """Chunk bodies kept in an anonymous temporary file (length-prefixed) until the snapshot is verified."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)

    def __enter__(self) -> ChunkSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, data: bytes) -> None:
        self._file.write(len(data).to_bytes(8, "big") + data)

    def iter_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every entry of the spooled (already verified) chunk bodies, in order."""
        self._file.flush()
        self._file.seek(0)
        while header := self._file.read(8):
            yield from decode_chunk(self._file.read(int.from_bytes(header, "big")))
