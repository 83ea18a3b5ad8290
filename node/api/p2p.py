"""Node-to-node routes: the envelope inbox, and what block sync and state sync fetch.

The inbox refuses a body larger than `MAX_INBOX_BYTES` with 413 before it
holds it in memory: a declared Content-Length above the limit is refused
without reading anything, and a body streamed without one (or longer than it
declared) is cut off as soon as it passes the limit. Each refusal is counted
in `Node.oversized_requests`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from node.api.deps import get_node
from node.node import Node
from p2p.envelope import DEFAULT_MAX_ENVELOPE_BYTES
from p2p.sync import encode_status, read_blocks

router = APIRouter(prefix="/p2p", tags=["p2p"], include_in_schema=False)

NodeDep = Annotated[Node, Depends(get_node)]

MAX_INBOX_BYTES = 2 * DEFAULT_MAX_ENVELOPE_BYTES
"""Largest `/p2p` POST body read: room for the largest envelope a peer accepts, and its framing."""


@router.post("")
async def inbox(request: Request, node: NodeDep) -> Response:
    """A frame of signed envelopes from a peer; refused envelopes are counted and dropped."""
    body = await read_capped_body(request, MAX_INBOX_BYTES)
    if body is None:
        node.oversized_requests += 1
        return Response(status_code=413, headers={"connection": "close"})
    accepted = await node.transport.receive(body)
    return Response(status_code=202, headers={"x-accepted": str(accepted)})


async def read_capped_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@router.get("/status")
async def sync_status(node: NodeDep) -> Response:
    """This node's height and head hash, for peers deciding whether to sync from it."""
    height, head_hash = node.executor.head()
    return Response(encode_status(height, head_hash), media_type="application/msgpack")


@router.get("/snapshot")
async def snapshot_manifest(node: NodeDep) -> Response:
    """The manifest of the snapshot this node offers (404 when it offers none yet)."""
    offer = node.snapshots.current_offer()
    if offer is None:
        return Response(status_code=404)
    return Response(offer.manifest_bytes(), media_type="application/msgpack")


@router.get("/snapshot/{index}")
async def snapshot_chunk(node: NodeDep, index: int) -> Response:
    """Chunk `index` of the offered snapshot (404 when there is no such chunk)."""
    offer = node.snapshots.offer
    if offer is None:
        return Response(status_code=404)
    try:
        body = offer.chunk_bytes(index)
    except IndexError:
        return Response(status_code=404)
    return Response(body, media_type="application/msgpack")


@router.get("/blocks")
async def sync_blocks(node: NodeDep, from_: int = Query(alias="from", ge=1), to: int = Query(ge=1)) -> Response:
    """Committed blocks `from`..`to` with their commit certificates (fewer if the limits are reached)."""
    return Response(read_blocks(node.store, from_, to), media_type="application/msgpack")
