"""Node-to-node routes: what block sync and state sync fetch (the envelope inbox is `node.api.inbox`).

Every route here answers member nodes only: the request must carry a seal that the node's `ReadGate`
opens (`p2p.reads`); otherwise it is refused, 401 or 403, before any parameter is even looked at.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ledger.encoding import MAX_INT
from node.api.deps import get_node
from node.api.errors import Forbidden, Unauthorized
from node.node import Node
from p2p.errors import Dropped
from p2p.reads import SEAL_HEADER, is_forbidden
from p2p.sync import encode_status, read_blocks


async def require_member_node(request: Request) -> str:
    """The id of the member node that sealed this read; 401 or 403 for anyone else."""
    node: Node = request.app.state.node
    try:
        return node.read_gate.open(
            request.headers.get(SEAL_HEADER), request.url.path, request.query_params.multi_items()
        )
    except Dropped as exc:
        message = f"only member nodes read /p2p, with a sealed request ({exc.reason})"
        raise (Forbidden if is_forbidden(exc) else Unauthorized)(message) from exc


router = APIRouter(prefix="/p2p", tags=["p2p"], include_in_schema=False, dependencies=[Depends(require_member_node)])

NodeDep = Annotated[Node, Depends(get_node)]


@router.get("/status")
async def sync_status(node: NodeDep) -> Response:
    """This node's height and head hash, for peers deciding whether to sync from it."""
    height, head_hash = node.executor.head()
    return Response(encode_status(height, head_hash), media_type="application/msgpack")


@router.get("/snapshot")
async def snapshot_manifest(node: NodeDep) -> Response:
    """The manifest of the snapshot this node offers (404 when it offers none yet)."""
    offer = await node.snapshots.current_offer()
    if offer is None:
        return Response(status_code=404)
    return Response(offer.manifest_bytes(), media_type="application/msgpack")


@router.get("/snapshot/{index}")
async def snapshot_chunk(node: NodeDep, index: Annotated[int, Path(ge=0, le=MAX_INT)]) -> Response:
    """Chunk `index` of the offered snapshot (404 when there is no such chunk), read from the prepared offer on
    a worker thread."""
    offer = node.snapshots.offer
    if offer is None:
        return Response(status_code=404)
    try:
        body = await asyncio.to_thread(offer.chunk_bytes, index)
    except IndexError:
        return Response(status_code=404)
    return Response(body, media_type="application/msgpack")


@router.get("/blocks")
async def sync_blocks(
    node: NodeDep, from_: int = Query(alias="from", ge=1, le=MAX_INT), to: int = Query(ge=1, le=MAX_INT)
) -> Response:
    """Committed blocks `from`..`to` with their commit certificates (fewer if the limits are reached)."""
    return Response(read_blocks(node.store, from_, to), media_type="application/msgpack")


@router.get("/addresses")
async def announced_addresses(node: NodeDep) -> Response:
    """The newest signed address record this node holds of each validator (`p2p.addresses`)."""
    return Response(node.addresses.book.encode_records(), media_type="application/msgpack")
