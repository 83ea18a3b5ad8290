"""Submitting signed txs and asking what became of them."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ledger.encoding import decode
from ledger.errors import InvalidTransaction, LedgerError
from ledger.tx import Tx, tx_from_wire
from node.api.deps import get_node
from node.api.errors import NotFound, error_body
from node.api.models import ErrorBody, TxAccepted, TxBatchResult, TxIn, TxStatus
from node.api.render import render_receipt
from node.node import Node

router = APIRouter(prefix="/v1", tags=["transactions"])

MAX_BATCH = 5000
"""Most txs in one `POST /v1/txs`."""

NodeDep = Annotated[Node, Depends(get_node)]


def tx_from_json(body: TxIn) -> Tx:
    wire = body.model_dump()
    try:
        wire["signature"] = bytes.fromhex(body.signature)
    except ValueError as exc:
        raise InvalidTransaction("signature must be hex") from exc
    return tx_from_wire(wire)


@router.post(
    "/tx",
    status_code=202,
    response_model=TxAccepted,
    responses={400: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    summary="Submit one signed tx",
)
async def post_tx(body: TxIn, node: NodeDep) -> Any:
    """Admit a signed tx into the mempool. Answers 202 with the tx id; follow it with `GET /v1/tx/{tx_id}`."""
    (result,) = node.submit([tx_from_json(body)])
    if result.error is not None:
        raise result.error
    return TxAccepted(tx_id=result.tx_id.hex())


@router.post(
    "/txs",
    status_code=202,
    response_model=list[TxBatchResult],
    summary="Submit many signed txs (JSON list of txs, or a msgpack array of encoded txs)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/TxIn"}}},
                "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
async def post_txs(request: Request, node: NodeDep) -> Any:
    """Admit a batch; each tx gets its own verdict, in order."""
    raw = await request.body()
    try:
        if request.headers.get("content-type", "").startswith("application/msgpack"):
            items = decode(raw)
            if not isinstance(items, list):
                raise InvalidTransaction("body must be a msgpack array of txs")
            txs = [tx_from_wire(item) for item in items]
        else:
            items = json.loads(raw)
            if not isinstance(items, list):
                raise InvalidTransaction("body must be a JSON array of txs")
            txs = [tx_from_json(TxIn.model_validate(item)) for item in items]
    except LedgerError as exc:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=400)
    except ValueError as exc:
        return JSONResponse(error_body("invalid_transaction", str(exc)), status_code=400)
    if len(txs) > MAX_BATCH:
        return JSONResponse(error_body("too_many_txs", f"at most {MAX_BATCH} txs per batch"), status_code=400)
    return [
        TxBatchResult(
            tx_id=r.tx_id.hex(),
            accepted=r.error is None,
            error=None if r.error is None else r.error.code,
            message=None if r.error is None else str(r.error),
        )
        for r in node.submit(txs)
    ]


@router.get("/tx/{tx_id}", response_model=TxStatus, responses={404: {"model": ErrorBody}}, summary="Where a tx stands")
async def get_tx(tx_id: str, node: NodeDep) -> Any:
    """`pending` (in the mempool), `committed` (with height, index and receipt), or `rejected` (committed
    but refused by a contract; `reason` says why)."""
    try:
        raw_id = bytes.fromhex(tx_id)
    except ValueError as exc:
        raise InvalidTransaction("tx id must be hex") from exc
    found = node.find_receipt(raw_id)
    if found is not None:
        height, index, receipt = found
        return TxStatus(
            tx_id=tx_id,
            status="committed" if receipt.ok else "rejected",
            height=height,
            index=index,
            receipt=render_receipt(receipt),
            reason=None if receipt.ok else f"{receipt.code}: {receipt.message}",
        )
    if raw_id in node.mempool:
        return TxStatus(tx_id=tx_id, status="pending")
    raise NotFound(f"tx {tx_id} is neither pending nor committed on this node")
