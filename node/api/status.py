"""Liveness, node status and the peer table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from node.api.deps import get_node
from node.api.models import Peer, Status
from node.node import Node

router = APIRouter(tags=["node"])

NodeDep = Annotated[Node, Depends(get_node)]


@router.get("/health", summary="Liveness probe")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/status", response_model=Status, summary="Height, head, view and primary of this node")
async def status(node: NodeDep) -> Any:
    return node.status()


@router.get(
    "/v1/peers",
    response_model=list[Peer],
    summary="Every peer with reachability, height seen, round-trip time and traffic",
)
async def peers(node: NodeDep) -> Any:
    return node.peers.snapshot()
