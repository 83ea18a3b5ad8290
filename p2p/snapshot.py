"""State sync: load a certified snapshot of the world state instead of replaying every block.

A node serving state sync offers one frozen state (`SnapshotOffer`), at a
block it has committed, cut into the subtrees of the state's Merkle tree
(`ledger.commitment`) at a fixed depth k (`prefix_bits`): chunk i holds the
entries whose path, sha256 of the key, begins with the k bits of i, in key
order. The server picks the least k (at most `MAX_PREFIX_BITS`) at which no
chunk holds more than its chunk size, so k grows with the state:

    GET <peer>/p2p/snapshot       -> manifest {height, block, certificate, prefix_bits, chunk_roots,
                                               chunk_sizes[, epochs]}
    GET <peer>/p2p/snapshot/<i>   -> [[key, value], ...] (chunk i, 0-based, 2**prefix_bits chunks)

A 404 on `/p2p/snapshot` means the peer offers none. Both bodies are
canonical msgpack.

The manifest gives each chunk's subtree root (`chunk_roots`) and entry count
(`chunk_sizes`; the count says whether a subtree is one lone leaf, which
stands in its parent's place). A syncing node checks, before it asks for any
chunk, that the manifest's block carries a good commit certificate and that
the chunk roots combine to the `state_root` that certified block names
(`verify_manifest`); then each chunk as it arrives: its entry count, its keys
strictly increasing (no entry twice), every key's path under the chunk's
prefix, and its entries' subtree hashing to the chunk's root
(`verify_chunk`). Finding other entries with the same root is finding a
sha256 collision, so a chunk that passes is the certified state's, and a
false one is caught at once, not after the whole snapshot.

When the validator set has changed since genesis, the manifest carries the
chain of set changes up to its block (`epochs`): for each change, the new set
and the certified header of the last block before it, whose `validators_hash`
names that set. A syncing node that knows only genesis checks each link's
certificate against the set before it, so it knows which set certifies the
snapshot's block (`verify_epoch_links`); after the entries check out, the
membership they hold must name that same set at that height, so a manifest
that leaves a change out is refused.

`StateSync.sync` asks every trusted peer for its manifest, keeps those that
verify, groups the peers by the snapshot they offer (honest nodes at the same
height offer the same one, `Manifest.snapshot_id`), and tries the highest
first. Chunks are asked of the peers offering it in turn; a peer that sends a
false manifest or chunk is marked bad, and one that does not answer within
`request_timeout_s` (however slowly its bytes trickle) is left out, and the
chunk is asked of the next. Only when every chunk checked out does it call
`load(block, certificate, entries)`. Chunks wait for that in a spool file
(`ChunkSpool`), not in memory: a peer's manifest decides how much it sends,
never how much memory this node spends. When no peer offers a usable
snapshot it returns None, and the node falls back to block sync.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Annotated, Any, Protocol, TypeVar

import msgpack
import msgspec

from ledger.block import Block, CommitCertificate
from ledger.commitment import (
    EMPTY,
    combine_subtree_roots,
    compute_leaf_hash,
    compute_path,
    compute_prefix,
    compute_subtree_root,
)
from ledger.encoding import decode, encode, sha256
from ledger.epochs import MAX_EPOCH_LINKS, EpochLink, verify_epoch_links
from ledger.errors import InvalidBlock, LedgerError
from ledger.genesis import Genesis
from ledger.membership import MEMBERSHIP_KEY, decode_membership
from ledger.state import StateReader
from ledger.strict import convert_strict
from p2p.errors import InvalidSnapshot, PeerUnavailable
from p2p.peers import PeerTable
from p2p.verify import Progress, call_hook, verify_certified_block

DEFAULT_CHUNK_ENTRIES = 20_000
"""Most state entries a served chunk holds (the chunks' depth is chosen for it)."""

MAX_CHUNK_ENTRIES = 200_000
"""Largest chunk size a syncing node accepts in a manifest."""

MAX_PREFIX_BITS = 12
"""Deepest chunking: at most 4096 chunks."""

DEFAULT_REQUEST_TIMEOUT_S = 30.0
"""Longest one manifest or chunk request to a peer may take before the peer is left out."""

LoadState = Callable[[Block, CommitCertificate, Iterator[tuple[bytes, bytes]]], Awaitable[None] | None]
"""The node's hook that replaces its state by verified entries at `block` (e.g. `Store.load_state`)."""


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds: the certified block whose state it is, and its chunks' subtrees."""

    height: int
    block: Block
    """The block whose `state_root` the entries must match."""
    certificate: CommitCertificate
    prefix_bits: int
    """The depth k of the chunks' subtrees: chunk i holds the entries whose path begins with the k bits of i."""
    chunk_roots: tuple[bytes, ...]
    """Each chunk's subtree root (`ledger.commitment.compute_subtree_root`); they combine to the certified
    `state_root`, so each chunk is checked against the certified state as it arrives."""
    chunk_sizes: tuple[int, ...]
    """The number of entries each chunk holds."""
    epochs: tuple[EpochLink, ...] = ()
    """The validator set changes up to `block`, oldest first (none while the genesis set certifies it)."""

    @property
    def chunks(self) -> int:
        return len(self.chunk_roots)

    @property
    def entries(self) -> int:
        """Total number of state entries."""
        return sum(self.chunk_sizes)

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "block": self.block.to_wire(),
            "certificate": self.certificate.to_wire(),
            "chunk_roots": list(self.chunk_roots),
            "chunk_sizes": list(self.chunk_sizes),
            "height": self.height,
            "prefix_bits": self.prefix_bits,
        }
        if self.epochs:
            wire["epochs"] = [link.to_wire() for link in self.epochs]
        return wire

    def snapshot_id(self) -> bytes:
        """What names this snapshot whichever peer serves it: the block, the chunks' roots and sizes and the set
        changes (not the certificate, whose signers differ from node to node)."""
        return sha256(
            encode(
                {
                    "block": self.block.hash(),
                    "chunk_roots": list(self.chunk_roots),
                    "chunk_sizes": list(self.chunk_sizes),
                    "epochs": [link.header.hash() for link in self.epochs],
                }
            )
        )


def encode_manifest(manifest: Manifest) -> bytes:
    return encode(manifest.to_wire())


Count = Annotated[int, msgspec.Meta(ge=0)]
"""A non-negative integer."""

ChunkRoot = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
"""One chunk's subtree root."""

ChunkSize = Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK_ENTRIES)]
"""The number of entries of one chunk."""


class ManifestWire(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A manifest as a peer sends it: exactly these keys, the counts non-negative integers."""

    height: Count
    block: Any
    """A block's wire map (`Block.from_wire`)."""
    certificate: Any
    """A commit certificate's wire map (`CommitCertificate.from_wire`)."""
    prefix_bits: Annotated[int, msgspec.Meta(ge=0, le=MAX_PREFIX_BITS)]
    chunk_roots: Annotated[list[ChunkRoot], msgspec.Meta(max_length=1 << MAX_PREFIX_BITS)]
    chunk_sizes: Annotated[list[ChunkSize], msgspec.Meta(max_length=1 << MAX_PREFIX_BITS)]
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
    manifest = Manifest(
        wire.height,
        block,
        certificate,
        wire.prefix_bits,
        tuple(wire.chunk_roots),
        tuple(wire.chunk_sizes),
        epochs,
    )
    if manifest.height != block.height:
        raise InvalidSnapshot(f"manifest height {manifest.height} is not its block's {block.height}")
    chunks = 1 << manifest.prefix_bits
    if len(manifest.chunk_roots) != chunks or len(manifest.chunk_sizes) != chunks:
        raise InvalidSnapshot(
            f"{len(manifest.chunk_roots)} chunk roots and {len(manifest.chunk_sizes)} sizes for {chunks} chunks"
        )
    return manifest


def verify_manifest(genesis: Genesis, manifest: Manifest) -> None:
    """Raise `InvalidBlock` unless the manifest's block is certified (by the set its epoch links lead to) and
    its chunk roots combine to that block's state root."""
    validators = verify_epoch_links(genesis, manifest.height, manifest.epochs)
    verify_certified_block(genesis, manifest.block, manifest.certificate, validators)
    subtrees = list(zip(manifest.chunk_roots, manifest.chunk_sizes, strict=True))
    for index, (root, size) in enumerate(subtrees):
        if (root == EMPTY) != (size == 0):
            raise InvalidSnapshot(f"chunk {index}: {size} entries cannot have the root {root.hex()}")
    if combine_subtree_roots(subtrees) != manifest.block.header.state_root:
        raise InvalidSnapshot("the chunk roots do not combine to the certified state root")


def verify_chunk(manifest: Manifest, index: int, data: bytes) -> list[tuple[bytes, bytes]]:
    """The entries of chunk `index`'s body `data`; raises `InvalidSnapshot` unless it holds as many entries as
    the manifest says, keys strictly increasing, each under the chunk's prefix, and their subtree's root is the
    chunk's."""
    entries = decode_chunk(data)
    expected = manifest.chunk_sizes[index]
    if len(entries) != expected:
        raise InvalidSnapshot(f"chunk {index} holds {len(entries)} entries, not {expected}")
    leaves = []
    last: bytes | None = None
    for key, value in entries:
        if last is not None and key <= last:
            raise InvalidSnapshot(f"chunk {index}: keys out of order or repeated")
        path = compute_path(key)
        if compute_prefix(path, manifest.prefix_bits) != index:
            raise InvalidSnapshot(f"chunk {index}: key {key!r} belongs to another chunk")
        leaves.append((path, compute_leaf_hash(path, value)))
        last = key
    if compute_subtree_root(manifest.prefix_bits, leaves) != manifest.chunk_roots[index]:
        raise InvalidSnapshot(f"chunk {index} does not match its subtree root")
    return entries


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


def _never() -> bool:
    return False


_STOP_EVERY = 4096
"""Entries scanned between two questions whether to stop preparing an offer."""


def choose_prefix_bits(counts: list[int], chunk_entries: int) -> int:
    """The least depth at which no chunk holds more than `chunk_entries` entries (`MAX_PREFIX_BITS` if none),
    given the number of entries under each prefix of `MAX_PREFIX_BITS` bits."""
    bits, sizes = MAX_PREFIX_BITS, counts
    while bits > 0:
        coarser = [sizes[i] + sizes[i + 1] for i in range(0, len(sizes), 2)]
        if max(coarser) > chunk_entries:
            break
        bits, sizes = bits - 1, coarser
    return bits


class SnapshotOffer:
    """The serving side: one frozen state at a committed block, prepared once, then served in chunks.

    Preparing scans the state once, counting the entries under each prefix of
    `MAX_PREFIX_BITS` bits (to pick the chunks' depth) and spooling each entry
    to one of `2**SPOOL_BITS` files by the first bits of its path; then it
    reads the spools in path order, sorts each chunk's entries by key, hashes
    its subtree for the manifest and writes its body to an anonymous temporary
    file. A chunk request then reads one span of that file: no scan of the
    state, nothing the size of the state in memory (a spool or a chunk at a
    time), and the reader (a store snapshot) is no longer needed. Preparing
    takes seconds on a large state, so the node runs it on a worker thread;
    `should_stop` is asked as it goes, and a true answer abandons it with
    `InterruptedError`. Chunks may be read from any thread; a closed offer
    serves none.
    """

    SPOOL_BITS = 6
    """Bits of the path that choose a spool file while preparing: 64 files, each a 64th of the state."""

    def __init__(
        self,
        reader: StateReader,
        block: Block,
        certificate: CommitCertificate,
        chunk_entries: int = DEFAULT_CHUNK_ENTRIES,
        epochs: tuple[EpochLink, ...] = (),
        should_stop: Callable[[], bool] = _never,
    ) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close)
        self._lock = threading.Lock()
        self._spans: list[tuple[int, int]] = []
        """Offset and length of each chunk's body in the file."""
        self._should_stop = should_stop
        try:
            bits, roots, sizes = self._write_chunks(reader.scan_state(b""), chunk_entries)
        except BaseException:
            self._file.close()
            raise
        self.manifest = Manifest(block.height, block, certificate, bits, tuple(roots), tuple(sizes), epochs)
        self._manifest_bytes = encode_manifest(self.manifest)

    def _check_stop(self) -> None:
        if self._should_stop():
            raise InterruptedError("snapshot preparation stopped")

    def _write_chunks(
        self, scan: Iterator[tuple[bytes, bytes]], chunk_entries: int
    ) -> tuple[int, list[bytes], list[int]]:
        """Write every chunk's body; the chunks' depth, and each chunk's root and size."""
        counts = [0] * (1 << MAX_PREFIX_BITS)
        with ExitStack() as stack:
            spools: list[IO[bytes]] = [
                stack.enter_context(tempfile.TemporaryFile()) for _ in range(1 << self.SPOOL_BITS)
            ]
            for n, (key, value) in enumerate(scan):
                if n % _STOP_EVERY == 0:
                    self._check_stop()
                path = compute_path(key)
                counts[compute_prefix(path, MAX_PREFIX_BITS)] += 1
                spools[compute_prefix(path, self.SPOOL_BITS)].write(msgpack.packb((path, key, value)))
            bits = choose_prefix_bits(counts, chunk_entries)
            roots: list[bytes] = []
            sizes: list[int] = []
            pending: dict[int, list[tuple[bytes, bytes, bytes]]] = {}
            for spool_index, spool in enumerate(spools):
                self._check_stop()
                spool.seek(0)
                for path, key, value in msgpack.Unpacker(spool, raw=False, use_list=False):
                    pending.setdefault(compute_prefix(path, bits), []).append((path, key, value))
                while len(roots) < ((spool_index + 1) << bits) >> self.SPOOL_BITS:
                    chunk = sorted(pending.pop(len(roots), []), key=lambda entry: entry[1])
                    roots.append(compute_subtree_root(bits, ((p, compute_leaf_hash(p, v)) for p, _, v in chunk)))
                    sizes.append(len(chunk))
                    self._append_body(encode_chunk([(key, value) for _, key, value in chunk]))
        self._file.flush()
        return bits, roots, sizes

    def _append_body(self, body: bytes) -> None:
        offset = self._spans[-1][0] + self._spans[-1][1] if self._spans else 0
        self._file.write(body)
        self._spans.append((offset, len(body)))

    def manifest_bytes(self) -> bytes:
        return self._manifest_bytes

    def chunk_bytes(self, index: int) -> bytes:
        """The `/p2p/snapshot/<index>` body; raises `IndexError` outside 0..chunks-1 or once closed."""
        if not 0 <= index < self.manifest.chunks:
            raise IndexError(f"snapshot has {self.manifest.chunks} chunks, no chunk {index}")
        offset, length = self._spans[index]
        with self._lock:
            if self._file.closed:
                raise IndexError(f"the snapshot at height {self.manifest.height} is no longer offered")
            self._file.seek(offset)
            return self._file.read(length)

    def read_chunk(self, index: int) -> list[tuple[bytes, bytes]]:
        """Entries of chunk `index`; raises `IndexError` outside 0..chunks-1."""
        return decode_chunk(self.chunk_bytes(index))

    def close(self) -> None:
        with self._lock:
            self._file.close()


class SnapshotSource(Protocol):
    """Where state sync reads snapshots (`HttpSyncSource` fits)."""

    async def fetch_manifest(self, peer: str) -> bytes | None:
        """The peer's manifest body, None when it offers no snapshot; raises `PeerUnavailable`."""

    async def fetch_chunk(self, peer: str, index: int) -> bytes:
        """One chunk body; raises `PeerUnavailable`."""


T = TypeVar("T")

Offered = tuple[Manifest, list[str]]
"""A verified snapshot and the peers that offer it."""


class StateSync:
    """Fetches, verifies and loads the highest certified snapshot that peers offer, chunk by chunk from any of
    the peers offering it."""

    def __init__(
        self,
        genesis: Genesis,
        source: SnapshotSource,
        peers: PeerTable,
        load: LoadState,
        *,
        progress: Progress | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        self.genesis = genesis
        self.source = source
        self.peers = peers
        self.load = load
        self.progress = progress
        self.request_timeout_s = request_timeout_s
        """Longest one manifest or chunk request may take, however slowly its bytes arrive."""
        self.refused: dict[str, str] = {}
        """Peers marked bad by state sync, with the reason."""

    async def sync(self, min_height: int = 0) -> Manifest | None:
        """Load a verified snapshot above `min_height`; None when no peer offers one that checks out."""
        for manifest, serving in await self.poll_snapshots(min_height):
            with ChunkSpool() as spool:
                if not await self._fetch_verified(manifest, serving, spool):
                    continue
                await call_hook(self.load(manifest.block, manifest.certificate, spool.iter_entries()))
            return manifest
        return None

    async def poll_snapshots(self, min_height: int = 0) -> list[Offered]:
        """Verified snapshots above `min_height` with the trusted peers offering each: highest first, then the
        one most peers offer."""
        trusted = self.peers.trusted_ids()
        results = await asyncio.gather(
            *(self._request(p, self.source.fetch_manifest(p)) for p in trusted), return_exceptions=True
        )
        offered: dict[bytes, Offered] = {}
        for peer_id, result in zip(trusted, results, strict=True):
            if isinstance(result, PeerUnavailable):
                self.peers.record_error(peer_id, str(result))
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                try:
                    manifest = decode_manifest(result)
                    verify_manifest(self.genesis, manifest)
                except InvalidBlock as exc:
                    self._refuse(peer_id, f"snapshot manifest: {exc}")
                    continue
                self.peers.note_height(peer_id, manifest.height)
                if manifest.height > min_height:
                    offered.setdefault(manifest.snapshot_id(), (manifest, []))[1].append(peer_id)
        return sorted(offered.values(), key=lambda offer: (-offer[0].height, -len(offer[1]), offer[1]))

    async def _request(self, peer_id: str, request: Awaitable[T]) -> T:
        """`request`'s answer, or `PeerUnavailable` once it took `request_timeout_s`."""
        try:
            async with asyncio.timeout(self.request_timeout_s):
                return await request
        except TimeoutError:
            raise PeerUnavailable(f"{peer_id}: no answer within {self.request_timeout_s:.0f} s") from None

    async def _fetch_verified(self, manifest: Manifest, serving: list[str], spool: ChunkSpool) -> bool:
        """Spool every chunk of the snapshot, each checked as it arrives, taking the peers `serving` it in
        turn; False once none of them is left to ask."""
        serving = list(serving)
        membership: bytes | None = None
        for index in range(manifest.chunks):
            fetched = await self._fetch_chunk(manifest, index, serving)
            if fetched is None:
                return False
            entries, data = fetched
            membership = next((v for k, v in entries if k == MEMBERSHIP_KEY.encode()), membership)
            spool.write(data)
            if self.progress is not None:
                self.progress(index + 1, manifest.chunks)
        in_state = decode_membership(membership, self.genesis).validator_set(manifest.height)
        if in_state != verify_epoch_links(self.genesis, manifest.height, manifest.epochs):
            for peer_id in serving:
                self._refuse(peer_id, "the manifest's validator set changes are not those its state holds")
            return False
        return True

    async def _fetch_chunk(
        self, manifest: Manifest, index: int, serving: list[str]
    ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """Chunk `index` (its entries and body), verified, from the next of the peers `serving` the snapshot. A
        peer that does not answer in time is left out of `serving`, one that sends a false chunk is marked bad
        too; None when none is left."""
        while serving:
            peer_id = serving[index % len(serving)]
            try:
                data = await self._request(peer_id, self.source.fetch_chunk(peer_id, index))
                return verify_chunk(manifest, index, data), data
            except PeerUnavailable as exc:
                self.peers.record_error(peer_id, str(exc))
            except InvalidBlock as exc:
                self._refuse(peer_id, f"snapshot at {manifest.height}: {exc}")
            serving.remove(peer_id)
        return None

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
