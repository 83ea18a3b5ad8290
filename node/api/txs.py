"""Submitting signed txs and asking what became of them."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import msgpack
import msgspec
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from ledger.encoding import decode
from ledger.errors import InvalidTransaction
from ledger.tx import Tx, tx_from_wire
from node.api.deps import authorize_route, get_node
from node.api.errors import InvalidRequest, NotFound, TooManyTxs, describe_validation, list_problems
from node.api.limits import note_signatures
from node.api.models import ErrorBody, Receipt, TxAccepted, TxBatchResult, TxIn, TxStatus
from node.api.render import render_receipt
from node.node import Admitted, Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["transactions"])

MAX_BATCH = 500
"""Most txs in one `POST /v1/txs` (a full batch costs about 30 ms of the event loop to decode and check; a
block holds 400 by default)."""

NodeDep = Annotated[Node, Depends(get_node)]
Caller = Annotated[Principal, Depends(authorize_route)]


def get_source(request: Request) -> str:
    """The client's address, to which failed signature checks are charged."""
    return request.client.host if request.client else "unknown"


def submit_paid(request: Request, node: Node, txs: list[Tx]) -> list[Admitted]:
    """Submit txs from the client's address, the signatures checked counted as its work."""
    before = node.admission.signature_checks
    results = node.submit(txs, get_source(request))
    note_signatures(node.admission.signature_checks - before)
    return results


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
    responses={400: {"model": ErrorBody}, 429: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    summary="Submit one signed tx",
)
async def post_tx(body: TxIn, request: Request, node: NodeDep) -> Any:
    """Admit a signed tx into the mempool. Answers 202 with the tx id; follow it with `GET /v1/tx/{tx_id}`.
    A signer with its quota of txs waiting gets 429 `signer_over_quota`, a full mempool 503 `mempool_full`,
    an address that sent too many txs with failing signatures 429 `signature_checks_exhausted`; all carry
    `Retry-After` (seconds); an address over its rate of work 429 `rate_limited`."""
    (result,) = submit_paid(request, node, [tx_from_json(body)])
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
async def post_txs(request: Request, response: Response, node: NodeDep) -> Any:
    """Admit a batch; each tx gets its own verdict, in order. More than `MAX_BATCH` txs are refused
    before any of them is parsed, and each tx is refused for want of room before its signature is checked.
    If a tx was refused for want of room (`mempool_full`, `signer_over_quota`), the answer carries
    `Retry-After`: send those txs again after that many seconds. Each KiB of the body and each signature
    checked is a unit of the address's work (`api_address_rate_per_s`); an address in debt is refused 429
    `rate_limited` before its body is read."""
    raw = await request.body()
    msgpack_body = request.headers.get("content-type", "").startswith("application/msgpack")
    txs = await asyncio.to_thread(decode_batch, raw, msgpack_body)
    results = submit_paid(request, node, txs)
    waits = [r.error.retry_after_s for r in results if r.error is not None and r.error.retry_after_s is not None]
    if waits:
        response.headers["Retry-After"] = str(max(waits))
    return [
        TxBatchResult(
            tx_id=r.tx_id.hex(),
            accepted=r.error is None,
            error=None if r.error is None else r.error.code,
            message=None if r.error is None else str(r.error),
        )
        for r in results
    ]


def decode_batch(raw: bytes, msgpack_body: bool) -> list[Tx]:
    """The txs of a batch body (a msgpack array of tx maps, or a JSON array of `TxIn`), counted first; run on a
    worker thread, so that decoding a full batch (about 15 ms) does not hold the event loop whole."""
    if msgpack_body:
        return [tx_from_wire(item) for item in _decode_msgpack_batch(raw)]
    return [tx_from_json(_validate_json_tx(index, item)) for index, item in enumerate(_decode_json_batch(raw))]


def _decode_msgpack_batch(raw: bytes) -> list[Any]:
    """The entries of a msgpack array of txs, its length checked from the array header first."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(raw[:5])
    try:
        count = unpacker.read_array_header()
    except Exception as exc:  # msgpack raises several unrelated types
        raise InvalidRequest("body must be a msgpack array of txs") from exc
    if count > MAX_BATCH:
        raise TooManyTxs(f"{count} txs; at most {MAX_BATCH} per batch")
    items = decode(raw)
    if not isinstance(items, list):
        raise InvalidRequest("body must be a msgpack array of txs")
    return items


def _decode_json_batch(raw: bytes) -> list[Any]:
    """The entries of a JSON array of txs, counted before any of them is parsed."""
    entries = _split_json_array(raw)
    if len(entries) > MAX_BATCH:
        raise TooManyTxs(f"{len(entries)} txs; at most {MAX_BATCH} per batch")
    return [_parse_json(bytes(entry)) if isinstance(entry, msgspec.Raw) else entry for entry in entries]


def _split_json_array(raw: bytes) -> list[Any]:
    """The array's entries as raw text, split in C without building them; text that splitter refuses (such as
    an escaped lone surrogate, which a tx then refuses with its own error) is parsed whole instead."""
    try:
        return msgspec.json.decode(raw, type=list[msgspec.Raw])
    except msgspec.ValidationError as exc:
        raise InvalidRequest("body must be a JSON array of txs") from exc
    except (msgspec.DecodeError, RecursionError):
        items = _parse_json(raw)
    if not isinstance(items, list):
        raise InvalidRequest("body must be a JSON array of txs")
    return items


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise InvalidRequest(f"body is not JSON: {type(exc).__name__}") from exc


def _validate_json_tx(index: int, item: Any) -> TxIn:
    try:
        return TxIn.model_validate(item)
    except ValidationError as exc:
        problems = list_problems(exc.errors(), ["body", index])
        raise InvalidRequest(f"tx {index}: {describe_validation(exc.errors())}", fields=problems) from exc


@router.get("/tx/{tx_id}", response_model=TxStatus, responses={404: {"model": ErrorBody}}, summary="Where a tx stands")
async def get_tx(tx_id: str, node: NodeDep, caller: Caller) -> Any:
    """`pending` (in the mempool), `committed` (with height, index and receipt), `rejected` (committed
    but refused by a contract; `reason` says why), or `dropped` (left this node's mempool without being
    committed: `reason` is `waited_too_long`, `validity_window_closed` or `no_longer_admissible`; send it
    again, or a new one if its window closed). A token sees the txs its identity signed; operator and
    auditor tokens with `chain:read` see every tx."""
    try:
        raw_id = bytes.fromhex(tx_id)
    except ValueError as exc:
        raise InvalidTransaction("tx id must be hex") from exc
    found = node.find_receipt(raw_id)
    pending = None if found is not None else node.mempool.get(raw_id)
    dropped = None if found is not None or pending is not None else node.mempool.dropped(raw_id)
    if found:
        signer: str | None = node.get_committed_tx(found[0], found[1]).signer
    else:
        signer = pending.signer if pending else dropped[0] if dropped else None
    if signer is None or not (signer == caller.identity.id or (caller.sees_all and "chain:read" in caller.scopes)):
        raise NotFound(f"tx {tx_id} is neither pending nor committed on this node")
    if dropped is not None:
        return TxStatus(tx_id=tx_id, status="dropped", reason=dropped[1])
    if found is None:
        return TxStatus(tx_id=tx_id, status="pending")
    height, index, receipt = found
    return TxStatus(
        tx_id=tx_id,
        status="committed" if receipt.ok else "rejected",
        height=height,
        index=index,
        receipt=Receipt(**render_receipt(receipt)),
        reason=None if receipt.ok else f"{receipt.code}: {receipt.message}",
    )
