"""The state key layout of the OMS rules: one place says where every record lives.

Keys are `/`-separated paths of ids; ids never contain `/` (see `payload.get_id`),
so a prefix scan such as `journal/<location>/` returns exactly one location's entries.
Sequence numbers are zero-padded so that key order is numeric order.
"""

from __future__ import annotations


def sku_key(sku: str) -> str:
    return f"sku/{sku}"


def location_key(location: str) -> str:
    return f"location/{location}"


def org_locations_key(org: str) -> str:
    """How many locations the organisation has registered (bounded by `catalogue.max_locations_per_org`)."""
    return f"orglocations/{org}"


def stock_key(location: str, sku: str) -> str:
    return f"stock/{location}/{sku}"


def stock_prefix(location: str | None = None) -> str:
    return "stock/" if location is None else f"stock/{location}/"


def allocatable_key(sku: str) -> str:
    """The locations (in id order) that hold stock of the SKU that allocation may take; absent while none does."""
    return f"allocatable/{sku}"


def journal_key(location: str, sku: str, seq: int) -> str:
    return f"journal/{location}/{sku}/{seq:010d}"


def journal_prefix(location: str | None = None, sku: str | None = None) -> str:
    if location is None:
        return "journal/"
    if sku is None:
        return f"journal/{location}/"
    return f"journal/{location}/{sku}/"


def count_key(location: str, tx_hex: str) -> str:
    return f"count/{location}/{tx_hex}"


def count_prefix(location: str) -> str:
    return f"count/{location}/"


def order_key(order_id: str) -> str:
    return f"order/{order_id}"


def personal_key(order_id: str) -> str:
    """An order's sealed personal data (`records.PersonalRecord`)."""
    return f"personal/{order_id}"


def external_ref_key(channel: str, ref_hash: str) -> str:
    return f"extref/{channel}/{ref_hash}"


def customer_key(customer_hash: str) -> str:
    return f"customer/{customer_hash}"


def unpaid_key(deadline_ms: int, order_id: str) -> str:
    return f"unpaid/{deadline_ms:016d}/{order_id}"


UNPAID_PREFIX = "unpaid/"
"""Prefix of the unpaid-order deadline index, in deadline order."""


def fulfilment_key(fulfilment_id: str) -> str:
    return f"fulfilment/{fulfilment_id}"


def capacity_key(location: str, day: int) -> str:
    return f"capacity/{location}/{day}"


def return_key(return_id: str) -> str:
    return f"return/{return_id}"


def invoice_key(issuer: str, seq: int) -> str:
    return f"invoice/{issuer}/{seq:08d}"


def invoice_prefix(issuer: str | None = None) -> str:
    return "invoice/" if issuer is None else f"invoice/{issuer}/"


def invoice_seq_key(issuer: str) -> str:
    return f"invoiceseq/{issuer}"


def order_invoice_key(order_id: str, number: str) -> str:
    return f"orderinvoice/{order_id}/{number}"


def order_invoice_prefix(order_id: str) -> str:
    return f"orderinvoice/{order_id}/"


def credited_key(number: str) -> str:
    return f"credited/{number}"


def reversal_key(number: str) -> str:
    return f"reversed/{number}"


def backorder_key(order_id: str) -> str:
    return f"backorder/{order_id}"


BACKORDER_PREFIX = "backorder/"
"""Prefix of the index of orders waiting for stock, in order-number (so creation) order."""

RESTOCKED_KEY = "restock/new"
"""SKUs whose available stock grew since the last re-sourcing pass began (a sorted list)."""

RESTOCK_PASS_KEY = "restock/pass"
"""The re-sourcing pass under way: the SKUs it serves and the last order it visited (its cursor)."""


def document_key(location: str, document_hash: str) -> str:
    return f"document/{location}/{document_hash}"


def payment_reference_key(order_id: str, reference_hash: str) -> str:
    return f"payref/{order_id}/{reference_hash}"


def return_reference_key(order_id: str, reference_hash: str) -> str:
    return f"retref/{order_id}/{reference_hash}"


def cancel_reference_key(order_id: str, reference_hash: str) -> str:
    return f"cancelref/{order_id}/{reference_hash}"


def receipt_reference_key(return_id: str, reference_hash: str) -> str:
    """A return receipt's reference, taken once per return."""
    return f"rcvref/{return_id}/{reference_hash}"


def transfer_document_key(location: str, document_hash: str) -> str:
    """A transfer's document, taken once per sending location."""
    return f"transferdoc/{location}/{document_hash}"


def return_due_key(deadline_ms: int, return_id: str) -> str:
    return f"returndue/{deadline_ms:016d}/{return_id}"


RETURN_DUE_PREFIX = "returndue/"
"""Prefix of the index of returns awaited, by the block time they expire."""


def transfer_key(transfer_id: str) -> str:
    return f"transfer/{transfer_id}"
