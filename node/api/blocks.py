"""Committed blocks with their commit certificates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ledger.encoding import MAX_INT
from node.api.deps import authorize_route, get_node
from node.api.errors import Forbidden, NotFound
from node.api.models import Block, ErrorBody
from node.api.render import render_block
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["blocks"])

NodeDep = Annotated[Node, Depends(get_node)]
Reader = Annotated[Principal, Depends(authorize_route)]

Height = Annotated[int, Path(ge=1, le=MAX_INT, description="A block height, 1 for the first block")]


@router.get(
    "/blocks/{height}",
    response_model=Block,
    responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    summary="One committed block",
)
async def get_block(height: Height, node: NodeDep, reader: Reader) -> Any:
    """Header, txs (with ids), their receipts and the commit certificate of block `height`. A block holds
    every organisation's txs, so only operators and auditors read blocks."""
    require_global_reader(reader, "blocks")
    block = node.store.get_block(height)
    if block is None and 0 < height < node.base_height:
        raise NotFound(
            f"no block at height {height}: this node joined by state sync from a snapshot at height "
            f"{node.base_height} and holds no earlier blocks; ask a node with the full history"
        )
    if block is None:
        raise NotFound(f"no block at height {height}; this node is at {node.store.height}")
    receipts = [node.store.get_receipt(height, index) for index in range(len(block.txs))]
    return render_block(block, node.store.get_certificate(height), receipts)


def require_global_reader(reader: Principal, what: str) -> None:
    """Refuse a token whose identity reads only its own organisation's data."""
    if not reader.sees_all:
        raise Forbidden(f"{what} hold every organisation's data: only operator and auditor tokens read them")
