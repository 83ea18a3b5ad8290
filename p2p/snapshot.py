"""State sync: load a certified snapshot of the world state instead of replaying every block.

A node serving state sync offers one frozen state (`SnapshotOffer`), at a
block it has committed, cut into chunks of at most `chunk_entries` entries in
key order:

    GET <peer>/p2p/snapshot       -> manifest {height, block, certificate, chunks, entries, chunk_entries,
                                               chunk_sums[, epochs]}
    GET <peer>/p2p/snapshot/<i>   -> [[key, value], ...] (chunk i, 0-based)

A 404 on `/p2p/snapshot` means the peer offers none. Both bodies are
canonical msgpack.

The state commitment (`ledger.commitment`) is a sum over entries, so the
manifest gives each chunk's share of it (`chunk_sums`). A syncing node
checks, before it asks for any chunk, that the manifest's block carries a
good commit certificate and that the shares add up to the accumulator whose
digest that certified block names as its `state_root` (`verify_manifest`);
then each chunk as it arrives: its entry count, its keys strictly increasing
across chunks (no entry twice), and the sum of its entries equal to its share
(`verify_chunk`). Finding other entries with the same sum is as hard as
breaking the commitment itself, so a chunk that passes is the certified
state's, and a false one is caught at once, not after the whole snapshot.

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
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, Protocol, TypeVar

import msgpack
import msgspec

from ledger.block import Block, BlockHeader, CommitCertificate, verify_certificate
from ledger.commitment import ACCUMULATOR_BYTES, StateAccumulator
from ledger.encoding import decode, encode, sha256
from ledger.errors import InvalidBlock, LedgerError
from ledger.genesis import Genesis
from ledger.membership import (
    MEMBERSHIP_KEY,
    ValidatorSet,
    decode_membership,
    get_genesis_membership,
    identity_from_wire,
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

MAX_CHUNKS = 100_000
"""Most chunks a manifest may announce."""

DEFAULT_REQUEST_TIMEOUT_S = 30.0
"""Longest one manifest or chunk request to a peer may take before the peer is left out."""

MAX_EPOCH_LINKS = 10_000
"""Most validator set changes a manifest may carry."""

MAX_VALIDATORS = 1_000
"""Most validators one set of a manifest may name."""

LoadState = Callable[[Block, CommitCertificate, Iterator[tuple[bytes, bytes]]], Awaitable[None] | None]
"""The node's hook that replaces its state by verified entries at `block` (e.g. `Store.load_state`)."""


@dataclass(frozen=True)
class EpochLink:
    """One validator set change: the new set, and the certified last block header before it."""

    validators: ValidatorSet
    header: BlockHeader
    """Its `validators_hash` names `validators`; certified by the set before."""
    certificate: CommitCertificate

    def to_wire(self) -> dict[str, Any]:
        return {
            "certificate": self.certificate.to_wire(),
            "header": self.header.to_wire(),
            "validators": self.validators.to_wire(),
        }

    @classmethod
    def from_wire(cls, wire: Any) -> EpochLink:
        if not isinstance(wire, dict) or set(wire) != {"certificate", "header", "validators"}:
            raise InvalidSnapshot("an epoch link is a map of certificate, header and validators")
        validators = wire["validators"]
        if not isinstance(validators, list) or not validators or len(validators) > MAX_VALIDATORS:
            raise InvalidSnapshot(f"an epoch link names 1 to {MAX_VALIDATORS} validators")
        try:
            members = ValidatorSet(tuple(identity_from_wire(v) for v in validators))
        except (LedgerError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidSnapshot(f"an epoch link's validators are malformed: {exc!r}") from exc
        return cls(members, BlockHeader.from_wire(wire["header"]), CommitCertificate.from_wire(wire["certificate"]))


def verify_epoch_links(genesis: Genesis, height: int, links: tuple[EpochLink, ...]) -> ValidatorSet:
    """The set that certifies block `height`, from the genesis set through each certified change; raises
    `InvalidBlock` unless every link is certified by the set before it and names the next by its hash."""
    validators = get_genesis_membership(genesis).validator_set(1)
    last = 0
    for link in links:
        header = link.header
        if not last < header.height < height or header.chain_id != genesis.chain_id:
            raise InvalidSnapshot(f"epoch link at height {header.height} is out of order or not below {height}")
        verify_certificate(link.certificate, genesis, header.hash(), header.height, validators)
        if header.validators_hash != link.validators.hash():
            raise InvalidSnapshot(f"block {header.height} does not name the validator set its link gives")
        validators, last = link.validators, header.height
    return validators


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
    chunk_sums: tuple[bytes, ...]
    """Each chunk's share of the state commitment: the accumulator (`ledger.commitment`) of its entries alone.
    They add up to the accumulator the certified `state_root` is the digest of, so each chunk is checked
    against the certified state as it arrives."""
    epochs: tuple[EpochLink, ...] = ()
    """The validator set changes up to `block`, oldest first (none while the genesis set certifies it)."""

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "block": self.block.to_wire(),
            "certificate": self.certificate.to_wire(),
            "chunk_entries": self.chunk_entries,
            "chunk_sums": list(self.chunk_sums),
            "chunks": self.chunks,
            "entries": self.entries,
            "height": self.height,
        }
        if self.epochs:
            wire["epochs"] = [link.to_wire() for link in self.epochs]
        return wire

    def snapshot_id(self) -> bytes:
        """What names this snapshot whichever peer serves it: the block, the chunking, each chunk's sum and the
        set changes (not the certificate, whose signers differ from node to node)."""
        return sha256(
            encode(
                {
                    "block": self.block.hash(),
                    "chunk_entries": self.chunk_entries,
                    "chunk_sums": list(self.chunk_sums),
                    "entries": self.entries,
                    "epochs": [link.header.hash() for link in self.epochs],
                }
            )
        )

    def compute_chunk_size(self, index: int) -> int:
        """Entries chunk `index` holds: `chunk_entries`, but fewer in the last chunk."""
        return min(self.chunk_entries, self.entries - index * self.chunk_entries)


def encode_manifest(manifest: Manifest) -> bytes:
    return encode(manifest.to_wire())


Count = Annotated[int, msgspec.Meta(ge=0)]
"""A non-negative integer."""

ChunkSum = Annotated[bytes, msgspec.Meta(min_length=ACCUMULATOR_BYTES, max_length=ACCUMULATOR_BYTES)]
"""One chunk's accumulator, as bytes."""


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
    chunk_sums: Annotated[list[ChunkSum], msgspec.Meta(max_length=MAX_CHUNKS)]
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
        wire.height, block, certificate, wire.chunks, wire.entries, wire.chunk_entries, tuple(wire.chunk_sums), epochs
    )
    if manifest.height != block.height:
        raise InvalidSnapshot(f"manifest height {manifest.height} is not its block's {block.height}")
    if not 1 <= manifest.chunk_entries <= MAX_CHUNK_ENTRIES:
        raise InvalidSnapshot(f"chunk size {manifest.chunk_entries} outside 1..{MAX_CHUNK_ENTRIES}")
    if manifest.chunks != compute_chunk_count(manifest.entries, manifest.chunk_entries):
        raise InvalidSnapshot(f"{manifest.chunks} chunks cannot hold {manifest.entries} entries")
    if len(manifest.chunk_sums) != manifest.chunks:
        raise InvalidSnapshot(f"{len(manifest.chunk_sums)} chunk sums for {manifest.chunks} chunks")
    return manifest


def verify_manifest(genesis: Genesis, manifest: Manifest) -> None:
    """Raise `InvalidBlock` unless the manifest's block is certified (by the set its epoch links lead to) and
    its chunk sums add up to that block's state root."""
    validators = verify_epoch_links(genesis, manifest.height, manifest.epochs)
    verify_certified_block(genesis, manifest.block, manifest.certificate, validators)
    total = StateAccumulator()
    for part in manifest.chunk_sums:
        total.absorb(StateAccumulator.from_bytes(part))
    if total.digest() != manifest.block.header.state_root:
        raise InvalidSnapshot("the chunk sums do not add up to the certified state root")


def verify_chunk(manifest: Manifest, index: int, data: bytes, after: bytes | None) -> list[tuple[bytes, bytes]]:
    """The entries of chunk `index`'s body `data`; raises `InvalidSnapshot` unless it holds as many entries as
    the manifest says, keys strictly increasing from above `after` (the last key of the chunk before), and
    their accumulator is the chunk's sum."""
    entries = decode_chunk(data)
    expected = manifest.compute_chunk_size(index)
    if len(entries) != expected:
        raise InvalidSnapshot(f"chunk {index} holds {len(entries)} entries, not {expected}")
    acc = StateAccumulator()
    last = after
    for key, value in entries:
        if last is not None and key <= last:
            raise InvalidSnapshot(f"chunk {index}: keys out of order or repeated")
        acc.add(key, value)
        last = key
    if acc.to_bytes() != manifest.chunk_sums[index]:
        raise InvalidSnapshot(f"chunk {index} does not match its share of the certified state root")
    return entries


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


def _never() -> bool:
    return False


class SnapshotOffer:
    """The serving side: one frozen state at a committed block, prepared once, then served in chunks.

    Preparing scans the state once: it cuts the entries into chunks in key
    order, writes each chunk's body to an anonymous temporary file, and adds
    up each chunk's share of the state commitment for the manifest. A chunk
    request then reads one span of that file: no scan of the state, nothing
    the size of the state in memory, and the reader (a store snapshot) is no
    longer needed. Preparing takes seconds on a large state, so the node runs
    it on a worker thread; `should_stop` is asked between chunks, and a true
    answer abandons it with `InterruptedError`. Chunks may be read from any
    thread; a closed offer serves none.
    """

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
        try:
            sums, entries = self._write_chunks(reader.scan_state(b""), chunk_entries, should_stop)
        except BaseException:
            self._file.close()
            raise
        self.manifest = Manifest(
            block.height, block, certificate, len(sums), entries, chunk_entries, tuple(sums), epochs
        )
        self._manifest_bytes = encode_manifest(self.manifest)

    def _write_chunks(
        self, scan: Iterator[tuple[bytes, bytes]], chunk_entries: int, should_stop: Callable[[], bool]
    ) -> tuple[list[bytes], int]:
        """Write every chunk's body; the chunks' sums and the count of entries."""
        sums: list[bytes] = []
        entries = 0
        offset = 0
        while chunk := list(islice(scan, chunk_entries)):
            if should_stop():
                raise InterruptedError("snapshot preparation stopped")
            acc = StateAccumulator()
            for key, value in chunk:
                acc.add(key, value)
            body = encode_chunk(chunk)
            self._file.write(body)
            self._spans.append((offset, len(body)))
            sums.append(acc.to_bytes())
            offset += len(body)
            entries += len(chunk)
        self._file.flush()
        return sums, entries

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
        last_key: bytes | None = None
        membership: bytes | None = None
        for index in range(manifest.chunks):
            fetched = await self._fetch_chunk(manifest, index, serving, last_key)
            if fetched is None:
                return False
            entries, data = fetched
            last_key = entries[-1][0]
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
        self, manifest: Manifest, index: int, serving: list[str], after: bytes | None
    ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """Chunk `index` (its entries and body), verified, from the next of the peers `serving` the snapshot. A
        peer that does not answer in time is left out of `serving`, one that sends a false chunk is marked bad
        too; None when none is left."""
        while serving:
            peer_id = serving[index % len(serving)]
            try:
                data = await self._request(peer_id, self.source.fetch_chunk(peer_id, index))
                return verify_chunk(manifest, index, data, after), data
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
