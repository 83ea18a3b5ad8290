"""Invoicing: invoices per shipment (or per order), credit notes, reversal and reissue.

An invoice is issued by the organisation that owns the shipping location and
numbered in that issuer's unbroken sequence (`numbering.take_invoice_number`);
credit notes share the sequence. Each line carries unit price, quantity,
discount, tax rate (basis points, from `tax.rates` by tax class and region),
net, tax and gross; the totals are the sums of the lines. Prices are
tax-inclusive or exclusive (`tax.prices_include_tax`).

Prices are fixed when the order is taken (`price_order`): each order line,
and the shipping charge, gets its tax rate, net, tax and gross then, computed
as one invoice of the whole order would be. An invoice is cut from that
snapshot, never priced again: the units of a line it bills take their share of
the line's amounts (`take_line_share`), and so do cancelled units; shares
taken in turn add up to the line exactly. So the invoices of an order and its
cancellations always sum to what the customer was charged, however the order
is split, whatever the configuration says by the time it ships.

Rounding rule: amounts are integer minor units and tax is rounded half-up
(`compute_half_up`). With `tax.rounding = line` each line's tax is rounded on
its own; with `invoice` the tax of all lines sharing a rate is rounded once
and spread over the lines by largest remainder, so lines still sum to the
total. The order's shipping charge is a line (`sku = shipping`) on its first
invoice.

Documents are never edited. A return produces a credit note that refers to
the invoice; its amounts are the difference of the invoice line's amounts
prorated at the cumulative credited quantity, so credit notes never exceed what
was invoiced and a full return credits exactly; once every unit an order
invoiced is credited, its shipping charge is credited too. A wrong invoice is reversed
(`invoice.reverse`): a credit note for whatever is not yet credited, then a new
invoice for the same goods and the same gross amounts, whose net and tax are
split at the tax rates configured now (tax rounded per line): a correction of
the document, never of what was charged.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.catalogue import get_location
from contracts.context import Context, TxContext
from contracts.errors import Rejected
from contracts.lifecycle import (
    SENT_FULFILMENT,
    compute_shipping_status,
    get_order_fulfilments,
    put_fulfilment,
    put_order,
    require_order,
)
from contracts.numbering import take_invoice_number
from contracts.payload import boolean, choice, ident, integer, payload, read_payload, table, text
from contracts.records import Credited, Document, Fulfilment, Order, PricedLine, Rounding
from contracts.roles import reaches_every_org, roles_for
from contracts.settings import Setting
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("invoice.reverse")

BASIS_POINTS = 10_000
"""A tax rate of 10000 basis points is 100 %."""

MAX_TAX_CLASSES = 32
"""Most tax classes in `tax.rates`."""

MAX_TAX_REGIONS = 256
"""Most regions (and `*`) with a rate of one tax class."""

SETTINGS = (
    Setting(
        table(
            "tax.rates",
            table("", integer("", 0, BASIS_POINTS), min_items=1, max_items=MAX_TAX_REGIONS),
            min_items=1,
            max_items=MAX_TAX_CLASSES,
            default={"standard": {"*": 2100}, "reduced": {"*": 900}, "zero": {"*": 0}},
            doc="basis points by tax class, then by region (`*`: any other region)",
        ),
        governed=True,
    ),
    Setting(
        boolean("tax.prices_include_tax", default=True, doc="catalogue and order prices include tax"), governed=True
    ),
    Setting(
        choice(
            "tax.rounding", ("line", "invoice"), default="line", doc="tax rounded per line, or per invoice and rate"
        ),
        governed=True,
    ),
    Setting(ident("tax.shipping_class", default="standard", doc="the tax class of shipping charges"), governed=True),
    Setting(
        choice(
            "invoicing.mode",
            ("shipment", "order"),
            default="shipment",
            doc="one invoice per shipment, or one per issuer once the order has shipped",
        ),
        governed=True,
    ),
)
"""The configuration keys of this module (`contracts.settings`)."""

SHIPPING_SKU = "shipping"
"""The `sku` of a shipping-charge line."""

PAYLOADS = {
    "invoice.reverse": payload(text("number", doc="the invoice's number"), text("reason", min_length=1)),
}
"""The payload of each tx kind of this module."""


def compute_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, for non-negative numbers."""
    return (2 * numerator + denominator) // (2 * denominator)


def compute_distinct(values: list[Any]) -> list[Any]:
    """The distinct values, sorted."""
    out: list[Any] = []
    for value in sorted(values):
        if not out or out[-1] != value:
            out.append(value)
    return out


def get_tax_rate(config: dict[str, Any], tax_class: str, region: str) -> int:
    rates = config["tax.rates"].get(tax_class)
    if rates is None:
        raise Rejected("unknown_tax_class", f"no tax rates for class {tax_class}")
    rate = rates.get(region, rates.get("*"))
    if type(rate) is not int or not 0 <= rate <= BASIS_POINTS:
        raise Rejected("unknown_tax_class", f"no tax rate for class {tax_class} in region {region}")
    return rate


def compute_lines(items: list[PricedLine], include_tax: bool, per_invoice: bool) -> list[PricedLine]:
    """Fill in net, tax and gross of each item from its unit_price, qty, discount and tax_rate."""
    numerators = []
    for item in items:
        amount = item["unit_price"] * item["qty"] - item["discount"]
        rate = item["tax_rate"]
        numerators.append((amount, amount * rate, BASIS_POINTS + rate if include_tax else BASIS_POINTS))
    taxes = [compute_half_up(num, den) for _, num, den in numerators]
    if per_invoice:
        for rate in compute_distinct([item["tax_rate"] for item in items]):
            members = [i for i, item in enumerate(items) if item["tax_rate"] == rate]
            den = numerators[members[0]][2]
            total = compute_half_up(sum(numerators[i][1] for i in members), den)
            for i in members:
                taxes[i] = numerators[i][1] // den
            extra = total - sum(taxes[i] for i in members)
            by_remainder = sorted(members, key=lambda i: (-(numerators[i][1] % den), i))
            for i in by_remainder[:extra]:
                taxes[i] += 1
    lines: list[PricedLine] = []
    for item, (amount, _, _), tax in zip(items, numerators, taxes, strict=True):
        net, gross = (amount - tax, amount) if include_tax else (amount, amount + tax)
        lines.append({**item, "net": net, "tax": tax, "gross": gross})
    return lines


def get_document_key(number: str) -> str | None:
    """Where the document numbered `number` is kept (None for what is no document number)."""
    issuer, _, seq = number.rpartition("-")
    if not issuer or not seq.isdigit():
        return None
    return keys.invoice_key(issuer, int(seq))


def get_invoice(state: StateView, number: str) -> dict[str, Any] | None:
    """The invoice or credit note numbered `number` as stored (a `Document`), for readers outside the rules."""
    key = get_document_key(number)
    return None if key is None else state.get(key)


def require_invoice(state: StateView, number: str) -> Document:
    key = get_document_key(number)
    invoice: Document | None = None if key is None else state.get(key)
    if invoice is None:
        raise Rejected("unknown_invoice", f"invoice {number} does not exist")
    return invoice


def write_document(
    state: StateView,
    ctx: Context,
    order: Order,
    issuer: str,
    lines: list[PricedLine],
    *,
    prices_include_tax: bool,
    rounding: Rounding,
    fulfilments: list[str],
    credit_note: bool = False,
    refers_to: str | None = None,
    reissue_of: str | None = None,
    reason: str = "",
) -> Document:
    """Number and store an invoice or credit note; its totals are the sums of its lines."""
    number, seq = take_invoice_number(state, issuer)
    document: Document = {
        "number": number,
        "seq": seq,
        "issuer": issuer,
        "order_id": order["order_id"],
        "currency": order["currency"],
        "credit_note": credit_note,
        "refers_to": refers_to,
        "reissue_of": reissue_of,
        "reason": reason,
        "fulfilments": fulfilments,
        "prices_include_tax": prices_include_tax,
        "rounding": rounding,
        "lines": lines,
        "net_total": sum(line["net"] for line in lines),
        "tax_total": sum(line["tax"] for line in lines),
        "total": sum(line["gross"] for line in lines),
        "tx_id": ctx.tx_id if isinstance(ctx, TxContext) else None,
        "height": ctx.height,
        "time_ms": ctx.time_ms,
    }
    state.put(keys.invoice_key(issuer, seq), document)
    state.put(keys.order_invoice_key(order["order_id"], number), number)
    return document


def get_order_region(state: StateView, order: Order) -> str:
    if order["delivery"] is not None and order["delivery"].get("region"):
        return str(order["delivery"]["region"])
    store = get_location(state, order["pickup"]) if order["pickup"] else None
    return str(store["region"]) if store is not None else "*"


def compute_share(amount: int, qty: int, start: int, end: int) -> int:
    """The part of `amount` (for `qty` units) that falls to units `start` up to `end`: shares of consecutive
    ranges add up, so the ranges 0..qty in any pieces sum to `amount` exactly."""
    return amount * end // qty - amount * start // qty


def price_order(state: StateView, config: dict[str, Any], order: Order) -> int:
    """Fix the amounts of every order line and of the shipping charge as one invoice of the whole order would
    carry them under `config`; return the order total (what the customer is charged)."""
    region = get_order_region(state, order)
    items: list[PricedLine] = [
        {
            "sku": line["sku"],
            "line": index,
            "fulfilment": "",
            "qty": line["qty"],
            "unit_price": line["unit_price"],
            "discount": line["discount"],
            "tax_rate": get_tax_rate(config, line["tax_class"], region),
            "net": 0,
            "tax": 0,
            "gross": 0,
        }
        for index, line in enumerate(order["lines"])
    ]
    if order["shipping_charge"] > 0:
        shipping_class = config["tax.shipping_class"]
        items.append(
            {
                "sku": SHIPPING_SKU,
                "line": -1,
                "fulfilment": "",
                "qty": 1,
                "unit_price": order["shipping_charge"],
                "discount": 0,
                "tax_rate": get_tax_rate(config, shipping_class, region),
                "net": 0,
                "tax": 0,
                "gross": 0,
            }
        )
    order["prices_include_tax"] = bool(config["tax.prices_include_tax"])
    order["rounding"] = config["tax.rounding"]
    priced = compute_lines(items, order["prices_include_tax"], order["rounding"] == "invoice")
    for line, amounts in zip(order["lines"], priced, strict=False):
        line["tax_rate"] = amounts["tax_rate"]
        line["net"] = amounts["net"]
        line["tax"] = amounts["tax"]
        line["gross"] = amounts["gross"]
    order["shipping"] = priced[-1] if order["shipping_charge"] > 0 else None
    return sum(line["gross"] for line in priced)


def take_line_share(order: Order, index: int, qty: int, fulfilment: str) -> PricedLine:
    """An invoice (or cancellation) line for the next `qty` units of order line `index`, cut from the amounts
    fixed at order time; the caller counts the units as invoiced or cancelled."""
    line = order["lines"][index]
    start = line["invoiced"] + line["cancelled"]
    end = start + qty
    gross = compute_share(line["gross"], line["qty"], start, end)
    tax = compute_share(line["tax"], line["qty"], start, end)
    return {
        "sku": line["sku"],
        "line": index,
        "fulfilment": fulfilment,
        "qty": qty,
        "unit_price": line["unit_price"],
        "discount": compute_share(line["discount"], line["qty"], start, end),
        "tax_rate": line["tax_rate"],
        "net": gross - tax,
        "tax": tax,
        "gross": gross,
    }


def take_invoice_lines(order: Order, fulfilments: list[Fulfilment], shipping: bool) -> list[PricedLine]:
    """Invoice lines for the goods of `fulfilments` (counted as invoiced in `order`) and the shipping charge."""
    lines: list[PricedLine] = []
    for record in fulfilments:
        for part in record["lines"]:
            lines.append(take_line_share(order, part["line"], part["qty"], record["fulfilment_id"]))
            order["lines"][part["line"]]["invoiced"] += part["qty"]
    if shipping and order["shipping"] is not None:
        lines.append(order["shipping"])
    return lines


def invoice_shipped(state: StateView, ctx: Context, order: Order, fulfilments: list[Fulfilment]) -> list[str]:
    """Invoice what has shipped of the order's `fulfilments` (as stored, `get_order_fulfilments`) and is not
    invoiced yet, per config; returns the new numbers.

    The caller has put the fulfilments; this updates them (in `fulfilments` and in the state) with their
    invoice numbers and updates `order` in memory (the caller puts it).
    """
    pending = [f for f in fulfilments if f["status"] in SENT_FULFILMENT and f["invoice"] is None]
    if not pending:
        return []
    if ctx.config["invoicing.mode"] == "order":
        if compute_shipping_status(order, fulfilments) not in ("shipped", "delivered"):
            return []
        groups = [[f for f in pending if f["org"] == org] for org in compute_distinct([f["org"] for f in pending])]
    else:
        groups = [[f] for f in pending]
    numbers = []
    for group in groups:
        carries_goods = any(not f["virtual"] for f in group) or all(line["virtual"] for line in order["lines"])
        shipping = carries_goods and order["shipping_state"] == "open"
        invoice = write_document(
            state,
            ctx,
            order,
            group[0]["org"],
            take_invoice_lines(order, group, shipping),
            prices_include_tax=order["prices_include_tax"],
            rounding=order["rounding"],
            fulfilments=[f["fulfilment_id"] for f in group],
        )
        if shipping and order["shipping"] is not None:
            order["shipping_state"] = "invoiced"
            order["shipping_invoice"] = invoice["number"]
        for record in group:
            record["invoice"] = invoice["number"]
            put_fulfilment(state, record)
        numbers.append(invoice["number"])
    return numbers


def get_credited(state: StateView, invoice: Document) -> Credited:
    """How much of each invoice line has been credited so far (cumulative quantities) and the credited total."""
    record = state.get(keys.credited_key(invoice["number"]))
    return record if record is not None else {"qty": [0] * len(invoice["lines"]), "total": 0}


def issue_credit_note(
    state: StateView,
    ctx: Context,
    order: Order,
    invoice: Document,
    credits: list[tuple[int, int]],
    reason: str,
) -> Document:
    """Credit `qty` of invoice line `index` for each (index, qty); refuse more than was invoiced."""
    if invoice["credit_note"]:
        raise Rejected("invalid_document", f"{invoice['number']} is a credit note")
    credited = get_credited(state, invoice)
    lines: list[PricedLine] = []
    for index, qty in credits:
        line = invoice["lines"][index]
        before = credited["qty"][index]
        after = before + qty
        if after > line["qty"]:
            raise Rejected("over_credit", f"line {index} of {invoice['number']} has only {line['qty'] - before} left")
        credited["qty"][index] = after
        gross = line["gross"] * after // line["qty"] - line["gross"] * before // line["qty"]
        tax = line["tax"] * after // line["qty"] - line["tax"] * before // line["qty"]
        discount = line["discount"] * after // line["qty"] - line["discount"] * before // line["qty"]
        lines.append({**line, "qty": qty, "discount": discount, "net": gross - tax, "tax": tax, "gross": gross})
    note = write_document(
        state,
        ctx,
        order,
        invoice["issuer"],
        lines,
        credit_note=True,
        refers_to=invoice["number"],
        reason=reason,
        prices_include_tax=invoice["prices_include_tax"],
        rounding=invoice["rounding"],
        fulfilments=invoice["fulfilments"],
    )
    credited["total"] += note["total"]
    state.put(keys.credited_key(invoice["number"]), credited)
    return note


def credit_fulfilment_line(
    state: StateView, ctx: Context, order: Order, fulfilment: Fulfilment, line: int, qty: int, reason: str
) -> Document | None:
    """Credit returned goods of one fulfilment line on the invoice that billed them (None if not invoiced)."""
    if fulfilment["invoice"] is None:
        return None
    invoice = require_invoice(state, fulfilment["invoice"])
    for index, invoice_line in enumerate(invoice["lines"]):
        if invoice_line["line"] == line and invoice_line["fulfilment"] == fulfilment["fulfilment_id"]:
            return issue_credit_note(state, ctx, order, invoice, [(index, qty)], reason)
    return None


def is_fully_credited(state: StateView, order: Order) -> bool:
    """Has every unit of goods the order invoiced been credited?"""
    for _, number in state.scan(keys.order_invoice_prefix(order["order_id"])):
        invoice = require_invoice(state, number)
        if invoice["credit_note"]:
            continue
        credited = get_credited(state, invoice)["qty"]
        if any(line["line"] >= 0 and credited[i] < line["qty"] for i, line in enumerate(invoice["lines"])):
            return False
    return True


def credit_shipping(state: StateView, ctx: Context, order: Order, reason: str) -> Document | None:
    """Credit the invoiced shipping charge once every unit of goods is credited (a full return); None otherwise."""
    if order["shipping_state"] != "invoiced" or order["shipping_invoice"] is None:
        return None
    if not is_fully_credited(state, order):
        return None
    invoice = require_invoice(state, order["shipping_invoice"])
    index = next(i for i, line in enumerate(invoice["lines"]) if line["line"] < 0)
    order["shipping_state"] = "credited"
    return issue_credit_note(state, ctx, order, invoice, [(index, 1)], reason)


def process_invoice_reverse(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Reverse a wrong invoice with a credit note for what is left on it, and reissue it: the same goods for the
    same gross amounts (what the customer was charged), net and tax split at the rates configured now."""
    fields = read_payload(PAYLOADS["invoice.reverse"], tx.payload)
    number = fields["number"]
    reason = fields["reason"]
    invoice = require_invoice(state, number)
    if not reaches_every_org(ctx.signer.roles, ctx.kind) and ctx.signer.org != invoice["issuer"]:
        raise Rejected("forbidden", f"{ctx.signer.id} does not act for the issuer of {number}")
    if invoice["credit_note"]:
        raise Rejected("invalid_document", f"{number} is a credit note")
    if state.get(keys.reversal_key(number)) is not None:
        raise Rejected("already_reversed", f"invoice {number} is already reversed")
    order = require_order(state, invoice["order_id"])
    credited = get_credited(state, invoice)
    remaining = [
        (index, line["qty"] - credited["qty"][index])
        for index, line in enumerate(invoice["lines"])
        if line["qty"] > credited["qty"][index]
    ]
    if not remaining:
        raise Rejected("over_credit", f"invoice {number} is fully credited already")
    note = issue_credit_note(state, ctx, order, invoice, remaining, f"reversal: {reason}")
    region = get_order_region(state, order)
    lines: list[PricedLine] = []
    for credited_line in note["lines"]:
        rate = get_tax_rate(ctx.config, _tax_class_of(order, credited_line["line"], ctx), region)
        tax = compute_half_up(credited_line["gross"] * rate, BASIS_POINTS + rate)
        lines.append({**credited_line, "tax_rate": rate, "net": credited_line["gross"] - tax, "tax": tax})
    reissued = write_document(
        state,
        ctx,
        order,
        invoice["issuer"],
        lines,
        prices_include_tax=invoice["prices_include_tax"],
        rounding="line",
        fulfilments=invoice["fulfilments"],
        reissue_of=number,
        reason=reason,
    )
    state.put(keys.reversal_key(number), {"credit_note": note["number"], "reissued": reissued["number"]})
    if order["shipping_invoice"] == number:
        order["shipping_invoice"] = reissued["number"]
        put_order(state, order)
    for record in get_order_fulfilments(state, order):
        if record["invoice"] == number:
            record["invoice"] = reissued["number"]
            put_fulfilment(state, record)
    return {"reversed": number, "credit_note": note["number"], "reissued": reissued["number"]}


def _tax_class_of(order: Order, line: int, ctx: TxContext) -> str:
    if line < 0:
        return str(ctx.config["tax.shipping_class"])
    return str(order["lines"][line]["tax_class"])
