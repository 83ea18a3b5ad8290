"""Invoices and credit notes: by issuer and number, of one order, one by its number, or ready to print.

A token that reads one organisation lists the documents its organisation
issued, and the documents of any order it can see. `GET
/v1/invoices/{number}/document` arranges everything the ledger holds for a
document (seller, order, customer hash, lines with their descriptions, tax
rates and amounts, tax per rate, totals, the document it corrects, where the
goods were shipped from) as a printed invoice needs it.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts import keys, queries
from contracts.catalogue import get_location, get_sku
from contracts.invoicing import get_invoice
from contracts.lifecycle import get_fulfilment
from ledger.encoding import decode
from ledger.state import StateView
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import NotFound
from node.api.limits import DEFAULT_PAGE
from node.api.models import ErrorBody, Invoice, InvoiceDocument, Page
from node.api.pages import Cursor, Limit, collect, decode_cursor
from node.node import Node
from node.tokens import Principal
from node.visibility import compute_invoice_orgs

router = APIRouter(prefix="/v1", tags=["invoices"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


def list_documents(
    node: Node,
    state: StateView,
    reader: Principal,
    order_id: str | None,
    issuer: str | None,
    limit: int,
    cursor: str | None,
    credit_notes: bool | None,
) -> Page[Any]:
    """Without `order_id`, documents by issuer and number (a store's or channel's token: those its
    organisation issued); with it, that order's documents (one page). `credit_notes`: only those (True), only
    invoices (False), or both (None)."""

    def wanted(document: dict[str, Any]) -> bool:
        return credit_notes is None or document["credit_note"] == credit_notes

    if order_id is not None:
        documents = queries.list_invoices(state, order_id=order_id)
        visible = [doc for doc in documents if reader.can_see(compute_invoice_orgs(state.get, doc))]
        return Page(items=[doc for doc in visible if wanted(doc)])
    if not reader.sees_all:
        if issuer not in (None, reader.org):
            return Page(items=[])
        issuer = reader.org
    entries = node.store.scan_state_after(keys.invoice_prefix(issuer).encode(), decode_cursor(cursor))

    def render(raw: bytes) -> dict[str, Any] | None:
        document = decode(raw)
        return queries.to_json(document) if wanted(document) else None

    items, next_cursor = collect(entries, limit, render)
    return Page(items=items, next_cursor=next_cursor)


def require_visible_document(state: StateView, reader: Principal, number: str) -> dict[str, Any]:
    """The invoice or credit note `number`, or 404 if absent or not the reader's to see."""
    document = get_invoice(state, number)
    if document is None or not reader.can_see(compute_invoice_orgs(state.get, document)):
        raise NotFound(f"no invoice or credit note {number!r}")
    return document


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
    return list_documents(node, state, reader, order_id, issuer, limit, cursor, credit_notes=None)


@router.get("/invoices/{number}", response_model=Invoice, responses={404: {"model": ErrorBody}}, summary="One document")
async def get_invoice_by_number(state: StateDep, reader: Reader, number: str) -> Any:
    return queries.to_json(require_visible_document(state, reader, number))


@router.get(
    "/invoices/{number}/document",
    response_model=InvoiceDocument,
    responses={404: {"model": ErrorBody}},
    summary="One invoice or credit note ready to print: seller, buyer, lines with descriptions, tax summary",
)
async def get_invoice_document(node: NodeDep, state: StateDep, reader: Reader, number: str) -> Any:
    """Every field the ledger holds for the document, arranged as a printed invoice needs them. The buyer is
    known by the channel's customer hash only: the ledger holds no personal data in clear."""
    return render_document(node, state, require_visible_document(state, reader, number))


@router.get("/credit-notes", response_model=Page[Invoice], summary="Credit notes by issuer and number")
async def list_credit_notes(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    order_id: str | None = None,
    issuer: str | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Any:
    """As `GET /v1/invoices`, credit notes only; a page reads at most `MAX_SCAN` documents."""
    return list_documents(node, state, reader, order_id, issuer, limit, cursor, credit_notes=True)


@router.get(
    "/credit-notes/{number}", response_model=Invoice, responses={404: {"model": ErrorBody}}, summary="One credit note"
)
async def get_credit_note(state: StateDep, reader: Reader, number: str) -> Any:
    document = require_visible_document(state, reader, number)
    if not document["credit_note"]:
        raise NotFound(f"{number} is an invoice, not a credit note")
    return queries.to_json(document)


def format_rate(basis_points: int) -> str:
    """A tax rate in basis points as a percentage with two decimals: 2100 -> "21.00"."""
    return f"{basis_points // 100}.{basis_points % 100:02d}"


def render_document(node: Node, state: StateView, document: dict[str, Any]) -> dict[str, Any]:
    """The document with what a printed invoice shows beside its numbers: who issued it, for which order and
    customer, what each line is, where the goods were shipped from, and the tax per rate."""
    order = state.get(keys.order_key(document["order_id"])) or {}
    names = {org["id"]: org["name"] for org in node.executor.get_membership().organisations}
    shipments = []
    for fulfilment_id in document["fulfilments"]:
        fulfilment = get_fulfilment(state, fulfilment_id)
        location = None if fulfilment is None else get_location(state, fulfilment["location"])
        shipments.append(
            {
                "fulfilment_id": fulfilment_id,
                "location": None if location is None else location["location"],
                "location_name": None if location is None else location["name"],
                "region": None if location is None else location["region"],
                "carrier": None if fulfilment is None else fulfilment.get("carrier"),
                "tracking": None if fulfilment is None else fulfilment.get("tracking"),
            }
        )
    lines = []
    for position, line in enumerate(document["lines"], 1):
        sku = get_sku(state, line["sku"]) if line["line"] >= 0 else None
        description = "shipping" if line["line"] < 0 else (sku["name"] if sku is not None else "") or line["sku"]
        lines.append(
            {"position": position, "description": description, **line, "tax_percent": format_rate(line["tax_rate"])}
        )
    rates = sorted({line["tax_rate"] for line in document["lines"]})
    summary = [
        {
            "tax_rate": rate,
            "tax_percent": format_rate(rate),
            "net": sum(line["net"] for line in document["lines"] if line["tax_rate"] == rate),
            "tax": sum(line["tax"] for line in document["lines"] if line["tax_rate"] == rate),
            "gross": sum(line["gross"] for line in document["lines"] if line["tax_rate"] == rate),
        }
        for rate in rates
    ]
    delivery = order.get("delivery") or {}
    return queries.to_json(
        {
            "number": document["number"],
            "sequence": document["seq"],
            "type": "credit_note" if document["credit_note"] else "invoice",
            "issue_date": time.strftime("%Y-%m-%d", time.gmtime(document["time_ms"] // 1000)),
            "issued_ms": document["time_ms"],
            "seller": {"org": document["issuer"], "name": names.get(document["issuer"], document["issuer"])},
            "buyer": {
                "customer_hash": order.get("customer_hash"),
                "region": delivery.get("region"),
                "pickup": order.get("pickup"),
            },
            "order": {
                "order_id": document["order_id"],
                "external_ref": order.get("external_ref"),
                "channel": order.get("channel"),
                "payment_terms": order.get("payment_terms"),
            },
            "currency": document["currency"],
            "prices_include_tax": document["prices_include_tax"],
            "rounding": document["rounding"],
            "lines": lines,
            "tax_summary": summary,
            "net_total": document["net_total"],
            "tax_total": document["tax_total"],
            "total": document["total"],
            "refers_to": document["refers_to"],
            "reissue_of": document["reissue_of"],
            "reason": document["reason"],
            "shipments": shipments,
            "tx_id": document["tx_id"],
            "height": document["height"],
        }
    )
