"""State sync over real HTTP from several peers, some of them Byzantine: the joining node loads the honest
snapshot, refuses a false manifest before asking for any chunk, refuses a false chunk at the first one, leaves
a peer that trickles its answer after the request deadline, and never loads what any of them sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from p2p_chains import certify, make_block

from ledger.block import Block, CommitCertificate, genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import encode
from ledger.state import MemoryState
from p2p.peers import PeerTable
from p2p.snapshot import Manifest, SnapshotOffer, StateSync, decode_chunk, encode_chunk
from p2p.sync import HttpSyncSource
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
ENTRIES = {f"order/A-{i:06d}".encode(): encode({"qty": i, "sku": f"S-{i % 7}"}) for i in range(600)}
BLOCK = make_block(NET, 40, genesis_hash(GENESIS), [], state_root=compute_commitment(ENTRIES.items()))
CHUNK_ENTRIES = 50


def honest_offer(signers: tuple[str, ...] = ("node-0", "node-1", "node-2")) -> SnapshotOffer:
    return SnapshotOffer(MemoryState(dict(ENTRIES)), BLOCK, certify(NET, BLOCK, signers), CHUNK_ENTRIES)


class Peer:
    """A real HTTP server answering `/p2p/snapshot` and `/p2p/snapshot/<i>` with what its functions give."""

    def __init__(self, manifest: Callable[[], bytes], chunk: Callable[[int], bytes], trickle: bool = False) -> None:
        self.requests: Counter[str] = Counter()
        self.trickle = trickle
        """Send chunk bodies a byte every 50 ms."""
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                kind = "manifest" if parts == ["p2p", "snapshot"] else "chunk"
                peer.requests[kind] += 1
                body = manifest() if kind == "manifest" else chunk(int(parts[-1]))
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                pieces = [body[n : n + 1] for n in range(len(body))] if kind == "chunk" and peer.trickle else [body]
                try:
                    for piece in pieces:
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(0.05 if len(pieces) > 1 else 0)
                except OSError:
                    return  # the client gave up on it

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def honest(offer: SnapshotOffer) -> Peer:
    return Peer(offer.manifest_bytes, offer.chunk_bytes)


def false_chunks(offer: SnapshotOffer) -> Peer:
    """The honest manifest, and every chunk with one value changed."""

    def chunk(index: int) -> bytes:
        entries = decode_chunk(offer.chunk_bytes(index))
        return encode_chunk([(entries[0][0], b"stolen"), *entries[1:]])

    return Peer(offer.manifest_bytes, chunk)


def false_manifest(offer: SnapshotOffer) -> Peer:
    """The certified block with the chunk roots of a made-up state, and that state's chunks (each true to its
    made-up root)."""
    forged = SnapshotOffer(
        MemoryState(dict.fromkeys(ENTRIES, b"forged")), BLOCK, offer.manifest.certificate, CHUNK_ENTRIES
    )
    assert forged.manifest.chunk_sizes == offer.manifest.chunk_sizes, "the same keys, so the same chunks"
    return Peer(forged.manifest_bytes, forged.chunk_bytes)


def trickling(offer: SnapshotOffer) -> Peer:
    """The honest manifest, and chunks that arrive a byte at a time (each read well within any read timeout)."""
    return Peer(offer.manifest_bytes, offer.chunk_bytes, trickle=True)


class Loader:
    def __init__(self) -> None:
        self.loads: list[dict[bytes, bytes]] = []

    def __call__(self, block: Block, certificate: CommitCertificate, entries: Iterator[tuple[bytes, bytes]]) -> None:
        self.loads.append(dict(entries))


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.close()


def sync_from(peers: dict[str, Peer]) -> tuple[Manifest | None, StateSync, Loader]:
    """State sync by node-3 from `peers` over HTTP, a request deadline of 1 s."""
    table = PeerTable.from_genesis(GENESIS, "node-3", {peer_id: peer.url for peer_id, peer in peers.items()})
    loader = Loader()

    async def run() -> tuple[Manifest | None, StateSync]:
        source = HttpSyncSource(table)
        sync = StateSync(GENESIS, source, table, loader, request_timeout_s=1.0)
        try:
            return await sync.sync(), sync
        finally:
            await source.close()

    manifest, sync = asyncio.run(run())
    return manifest, sync, loader


BYZANTINE = {"false chunks": false_chunks, "a false manifest": false_manifest, "a trickling peer": trickling}


@pytest.mark.parametrize("how", sorted(BYZANTINE))
def test_a_joining_node_syncs_from_the_honest_peers_and_never_loads_what_a_byzantine_one_sends(
    how: str, peers: list[Peer]
) -> None:
    offer = honest_offer()
    byzantine = BYZANTINE[how](offer)
    first, second = honest(offer), honest(honest_offer(("node-1", "node-2", "node-3")))
    peers.extend([byzantine, first, second])
    manifest, sync, loader = sync_from({"node-0": byzantine, "node-1": first, "node-2": second})
    assert manifest is not None and manifest.height == BLOCK.header.height
    assert loader.loads == [ENTRIES], "exactly the certified state is loaded, once"
    assert first.requests["chunk"] and second.requests["chunk"], "the honest peers share the chunks"
    assert first.requests["chunk"] + second.requests["chunk"] == manifest.chunks
    if how == "a false manifest":
        assert "chunk roots" in sync.refused["node-0"] and byzantine.requests["chunk"] == 0
    elif how == "false chunks":
        assert "subtree root" in sync.refused["node-0"] and byzantine.requests["chunk"] == 1
    else:
        assert "node-0" not in sync.refused and byzantine.requests["chunk"] == 1, "slow is left out, not blamed"


def test_byzantine_peers_alone_load_nothing(peers: list[Peer]) -> None:
    offer = honest_offer()
    liars = {"node-0": false_chunks(offer), "node-1": false_manifest(offer)}
    peers.extend(liars.values())
    manifest, sync, loader = sync_from(liars)
    assert manifest is None and loader.loads == [] and set(sync.refused) == {"node-0", "node-1"}
