"""Offline-verifiable proofs of committed txs (and of the txs that made an order, an invoice or a stock movement),
and of state entries (an order's record with its status, a stock position) after the latest block.

Each answer is the canonical text of a `ledger.proof.TxProof`: saved as it
comes, it is checked with `omsnode verify-proof FILE --genesis genesis.json`
and nothing else, across any validator-set changes since genesis (the proof
carries them, read from the blocks before each change). A proof carries its tx, so it is served to those who may
read that tx: its signer, an operator or auditor with `chain:read`, or a
reader of the order, invoice or stock movement the tx made. A state proof
(`ledger.state_proof`) carries its entry, so it is served to readers of that
order or of that location's stock.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from contracts import keys
from contracts.invoicing import get_invoice
from ledger.commitment import compute_state_path
from ledger.encoding import MAX_INT
from ledger.epochs import EpochLink
from ledger.errors import InvalidTransaction, LedgerError
from ledger.membership import MEMBERSHIP_KEY
from ledger.proof import compute_tx_proof, encode_proof
from ledger.state import StateView
from ledger.state_proof import compute_state_proof, encode_state_proof
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import NotFound
from node.api.models import ErrorBody
from node.node import Node
from node.snapshots import read_epoch_links
from node.tokens import Principal
from node.visibility import compute_invoice_orgs, get_location_org, get_order_orgs

router = APIRouter(prefix="/v1/proofs", tags=["proofs"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]

PROOF_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The proof's canonical JSON text (`ledger.proof`); save it byte for byte"},
    404: {"model": ErrorBody},
}


def read_changes(node: Node, membership: bytes | None, height: int) -> tuple[EpochLink, ...]:
    """The validator-set changes up to block `height`, or 404 if this node lacks a block they need."""
    changes = read_epoch_links(node.store, membership, height)
    if changes is None:
        raise NotFound(f"this node lacks a block of the validator-set changes before block {height}")
    return changes


def build_state_proof_text(node: Node, key: str, what: str) -> bytes:
    """The proof of state entry `key` after the latest block, read from one frozen view of the store."""
    snapshot = node.store.snapshot()
    try:
        head, raw = snapshot.head, snapshot.get_state(key.encode())
        siblings = compute_state_path(snapshot.get_node, key.encode())
        if head is None or raw is None or siblings is None:
            raise NotFound(f"no {what}")
        membership = snapshot.get_state(MEMBERSHIP_KEY.encode())
    finally:
        snapshot.close()
    block = node.store.get_block(head.height)
    certificate = node.store.get_certificate(head.height)
    if block is None or certificate is None:
        raise LedgerError(f"store head {head.height} has no block or certificate")
    changes = read_changes(node, membership, head.height)
    proof = compute_state_proof(node.genesis, block.header, certificate, key, raw, siblings, changes)
    return encode_state_proof(proof)


def build_proof_text(node: Node, tx_id: bytes) -> bytes:
    """The proof text of committed tx `tx_id`, or 404 if this node holds no block with it."""
    where = node.store.get_tx_location(tx_id)
    if where is None:
        raise NotFound(f"tx {tx_id.hex()} is not committed on this node")
    height, index = where
    block = node.store.get_block(height)
    certificate = node.store.get_certificate(height)
    if block is None or certificate is None:
        raise NotFound(f"this node no longer holds block {height} (it joined by state sync above it)")
    receipts = []
    for position in range(len(block.txs)):
        receipt = node.store.get_receipt(height, position)
        if receipt is None:
            raise LedgerError(f"store has block {height} but not its receipt {position}")
        receipts.append(receipt)
    changes = read_changes(node, node.store.get_state(MEMBERSHIP_KEY.encode()), height)
    proof = compute_tx_proof(node.genesis, block.header, certificate, block.txs, receipts, index, changes)
    return encode_proof(proof)


def _proof_response(node: Node, tx_id: bytes | None, what: str) -> Response:
    if tx_id is None:
        raise NotFound(f"{what} was made by the ledger itself, not by a tx: there is no tx to prove")
    return Response(content=build_proof_text(node, tx_id), media_type="application/json")


@router.get("/tx/{tx_id}", responses=PROOF_RESPONSES, summary="Proof that a tx was committed, with its receipt")
async def get_tx_proof(tx_id: str, node: NodeDep, caller: Annotated[Principal, Depends(authorize_route)]) -> Response:
    """The block header, commit certificate, tx, receipt, Merkle paths and validator-set changes that show
    the tx committed. Served to the tx's signer, and to operator and auditor tokens with `chain:read`."""
    try:
        raw_id = bytes.fromhex(tx_id)
    except ValueError as exc:
        raise InvalidTransaction("tx id must be hex") from exc
    where = node.store.get_tx_location(raw_id)
    signer = node.get_committed_tx(*where).signer if where is not None else None
    if signer is None or not (signer == caller.identity.id or (caller.sees_all and "chain:read" in caller.scopes)):
        raise NotFound(f"tx {tx_id} is not committed on this node")
    return _proof_response(node, raw_id, f"tx {tx_id}")


@router.get("/order/{order_id}", responses=PROOF_RESPONSES, summary="Proof of the tx that created an order")
async def get_order_proof(
    order_id: str, node: NodeDep, state: StateDep, reader: Annotated[Principal, Depends(authorize_route)]
) -> Response:
    order = state.get(keys.order_key(order_id))
    if order is None or not reader.can_see(get_order_orgs(state.get, order_id) or []):
        raise NotFound(f"no order {order_id!r}")
    return _proof_response(node, order["history"][0]["tx_id"], f"order {order_id}")


@router.get("/invoice/{number}", responses=PROOF_RESPONSES, summary="Proof of the tx that issued an invoice")
async def get_invoice_proof(
    number: str, node: NodeDep, state: StateDep, reader: Annotated[Principal, Depends(authorize_route)]
) -> Response:
    document = get_invoice(state, number)
    if document is None or not reader.can_see(compute_invoice_orgs(state.get, document)):
        raise NotFound(f"no invoice or credit note {number!r}")
    return _proof_response(node, document["tx_id"], f"document {number}")


@router.get(
    "/movement/{location}/{sku}/{seq}",
    responses=PROOF_RESPONSES,
    summary="Proof of the tx that made a stock movement (an entry of the stock journal)",
)
async def get_movement_proof(
    location: str,
    sku: str,
    seq: Annotated[int, Path(ge=0, le=MAX_INT)],
    node: NodeDep,
    state: StateDep,
    reader: Annotated[Principal, Depends(authorize_route)],
) -> Response:
    entry = state.get(keys.journal_key(location, sku, seq))
    if entry is None or not reader.can_see([get_location_org(state.get, location) or ""]):
        raise NotFound(f"no journal entry {seq} of {sku!r} at {location!r}")
    return _proof_response(node, entry["tx_id"], f"journal entry {seq} of {sku!r} at {location!r}")


@router.get(
    "/state/order/{order_id}",
    responses=PROOF_RESPONSES,
    summary="Proof of an order's record (its status, lines, history) in the state after the latest block",
)
async def get_order_state_proof(
    order_id: str, node: NodeDep, state: StateDep, reader: Annotated[Principal, Depends(authorize_route)]
) -> Response:
    """The certified header of the latest block, the order's state entry and its path to the header's state
    root: `omsnode verify-proof` shows the order's status after that block."""
    if "/" in order_id or state.get(keys.order_key(order_id)) is None:
        raise NotFound(f"no order {order_id!r}")
    if not reader.can_see(get_order_orgs(state.get, order_id) or []):
        raise NotFound(f"no order {order_id!r}")
    text = build_state_proof_text(node, keys.order_key(order_id), f"order {order_id!r}")
    return Response(content=text, media_type="application/json")


@router.get(
    "/state/stock/{location}/{sku}",
    responses=PROOF_RESPONSES,
    summary="Proof of a stock position (on hand, reserved) in the state after the latest block",
)
async def get_stock_state_proof(
    location: str,
    sku: str,
    node: NodeDep,
    state: StateDep,
    reader: Annotated[Principal, Depends(authorize_route)],
) -> Response:
    """The certified header of the latest block, the stock position's state entry and its path to the header's
    state root."""
    if state.get(keys.stock_key(location, sku)) is None or not reader.can_see(
        [get_location_org(state.get, location) or ""]
    ):
        raise NotFound(f"no stock of {sku!r} at {location!r}")
    text = build_state_proof_text(node, keys.stock_key(location, sku), f"stock of {sku!r} at {location!r}")
    return Response(content=text, media_type="application/json")
