"""`POST /v1/admin/backup`: the node's store as of one instant, for `omsnode backup` on the node's machine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from node.api.deps import get_node
from node.api.errors import Forbidden
from node.backup import is_backup_request_valid, iter_pairs
from node.node import Node

router = APIRouter(prefix="/v1/admin", tags=["admin"], include_in_schema=False)

NodeDep = Annotated[Node, Depends(get_node)]


class BackupRequest(BaseModel):
    """The request's time, signed with the node's own key (`node.backup.sign_backup_request`)."""

    time_ms: int
    signature: str


@router.post("/backup")
async def backup(body: BackupRequest, node: NodeDep) -> StreamingResponse:
    """Every pair of the store from one LevelDB snapshot, streamed as msgpack `[key, value]` arrays; only for
    whoever holds the node's key."""
    chain_id = node.genesis.chain_id
    if not is_backup_request_valid(
        node.key.public, chain_id, node.node_id, body.time_ms, body.signature[:256], node.clock()
    ):
        raise Forbidden("a backup must be asked for with the node's own key, signed within the last minute")
    return StreamingResponse(iter_pairs(node.store), media_type="application/octet-stream")
