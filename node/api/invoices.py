"""Invoices and credit notes: by issuer and number, of one order, or one by its number.

A token that reads one organisation lists the documents its organisation
issued, and the documents of any order it can see.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts import keys, queries
from contracts.invoicing import get_invoice
from ledger.encoding import decode
from ledger.state import StateView
from node.api.deps import authorize, get_node, get_state
from node.api.errors import NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, Invoice, Page
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.node import Node
from node.tokens import Principal
from node.visibility import compute_invoice_orgs

router = APIRouter(prefix="/v1", tags=["invoices"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize("invoices:read"))]


@router.get("/invoices", response_model=Page[Invoice], summary="Invoices and credit notes, optionally of one order")
async def list_invoices(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    order_id: str | None = None,
    issuer: str | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    """Without `order_id`, every document by issuer and number (a store's or channel's token: those its
    organisation issued); with it, that order's documents (one page)."""
    if order_id is not None:
        documents = queries.list_invoices(state, order_id=order_id)
        return Page(items=[doc for doc in documents if reader.can_see(compute_invoice_orgs(state.get, doc))])
    if not reader.sees_all:
        if issuer not in (None, reader.org):
            return Page(items=[])
        issuer = reader.org
    prefix = keys.invoice_prefix(issuer).encode()
    entries = node.store.scan_state_after(prefix, decode_cursor(cursor))
    items, next_cursor = collect(entries, limit, lambda raw: queries.to_json(decode(raw)))
    return Page(items=items, next_cursor=next_cursor)


@router.get("/invoices/{number}", response_model=Invoice, responses={404: {"model": ErrorBody}}, summary="One document")
async def get_invoice_by_number(state: StateDep, reader: Reader, number: str) -> Any:
    document = get_invoice(state, number)
    if document is None or not reader.can_see(compute_invoice_orgs(state.get, document)):
        raise NotFound(f"no invoice or credit note {number!r}")
    return queries.to_json(document)
