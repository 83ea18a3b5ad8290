"""Node-to-node routes: the envelope inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from node.api.deps import get_node
from node.node import Node

router = APIRouter(prefix="/p2p", tags=["p2p"], include_in_schema=False)

NodeDep = Annotated[Node, Depends(get_node)]


@router.post("")
async def inbox(request: Request, node: NodeDep) -> Response:
    """A frame of signed envelopes from a peer; refused envelopes are counted and dropped."""
    accepted = await node.transport.receive(await request.body())
    return Response(status_code=202, headers={"x-accepted": str(accepted)})
