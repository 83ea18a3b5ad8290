"""A lot's chain of custody: from its receipt through transfers and stores to the order that sold it and back.

Read from the lot index (`node.lots`) that each block's write batch keeps,
never from a scan of the journal: a page costs its own steps, however many
movements the ledger holds. A token that reads one organisation sees the
steps at its organisation's locations; operators and auditors see every
step. With `proof=true` each step carries the proof of its tx, which
`omsnode verify-proof` checks offline.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from contracts import keys
from ledger.encoding import decode
from ledger.state import StateView
from node.api.deps import authorize_route, get_node, get_state
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, Trace
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.api.proofs import build_proof_text
from node.lots import scan_lot
from node.node import Node
from node.tokens import Principal
from node.visibility import get_location_org

router = APIRouter(prefix="/v1", tags=["inventory"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]

MAX_PROOF_STEPS = 50
"""Most steps of one page with `proof=true` (each proof reads a block and its receipts)."""


def get_order_of(state: StateView, entry: dict[str, Any]) -> str | None:
    """The order a shipment sold the goods to, or a return took them back from (None for other movements)."""
    if entry["kind"] == "shipment":
        record = state.get(keys.fulfilment_key(entry["document"]))
    elif entry["kind"] == "return_in":
        record = state.get(keys.return_key(entry["document"]))
    else:
        return None
    return None if record is None else str(record["order_id"])


@router.get(
    "/trace/{lot}",
    response_model=Trace,
    responses={403: {"model": ErrorBody}},
    summary="A lot's chain of custody: receipt, transfers, the order that sold it, returns; each step's tx",
)
async def trace_lot(
    lot: str,
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    sku: Annotated[str | None, Query(description="only this SKU's lot (lots are per SKU)")] = None,
    proof: Annotated[bool, Query(description="each step with its tx's proof")] = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    """Steps grouped by SKU, each SKU's in the order the ledger made them (block, then place in the block).
    With `proof=true` a page holds at most `MAX_PROOF_STEPS` steps."""
    orgs: dict[str, str | None] = {}

    def render(journal_key: bytes) -> dict[str, Any] | None:
        raw = node.store.get_state(journal_key)
        if raw is None:
            return None
        entry = decode(raw)
        location = entry["location"]
        if location not in orgs:
            orgs[location] = get_location_org(state.get, location)
        if not reader.can_see([orgs[location] or ""]):
            return None
        step = {
            key: entry[key]
            for key in ("sku", "lot", "location", "kind", "delta", "bucket", "document", "height", "time_ms", "seq")
        }
        tx_id = entry["tx_id"]
        return {
            **step,
            "org": orgs[location],
            "order_id": get_order_of(state, entry),
            "tx_id": None if tx_id is None else tx_id.hex(),
            "proof": build_proof_text(node, tx_id).decode() if proof and tx_id is not None else None,
        }

    entries = scan_lot(node.store, lot, sku, decode_cursor(cursor))
    items, next_cursor = collect(entries, min(limit, MAX_PROOF_STEPS) if proof else limit, render)
    return {"lot": lot, "items": items, "next_cursor": next_cursor}
