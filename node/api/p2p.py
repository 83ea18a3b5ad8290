"""Node-to-node routes: the envelope inbox, and what block sync fetches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from node.api.deps import get_node
from node.node import Node
from p2p.sync import encode_status, read_blocks

router = APIRouter(prefix="/p2p", tags=["p2p"], include_in_schema=False)

NodeDep = Annotated[Node, Depends(get_node)]


@router.post("")
async def inbox(request: Request, node: NodeDep) -> Response:
    """A frame of signed envelopes from a peer; refused envelopes are counted and dropped."""
    accepted = await node.transport.receive(await request.body())
    return Response(status_code=202, headers={"x-accepted": str(accepted)})


@router.get("/status")
async def sync_status(node: NodeDep) -> Response:
    """This node's height and head hash, for peers deciding whether to sync from it."""
    height, head_hash = node.executor.head()
    return Response(encode_status(height, head_hash), media_type="application/msgpack")


@router.get("/blocks")
async def sync_blocks(node: NodeDep, from_: int = Query(alias="from", ge=1), to: int = Query(ge=1)) -> Response:
    """Committed blocks `from`..`to` with their commit certificates (fewer if the limits are reached)."""
    return Response(read_blocks(node.store, from_, to), media_type="application/msgpack")
