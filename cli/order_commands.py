"""`omsnode order ...` and `omsnode invoice ...`: orders and their documents, through a node's API.

order list [--status S] [--channel C] [--location L] [--external-ref R] [--created-min T] [--created-max T]
           [--updated-min T] [--updated-max T] [--limit N] [--cursor C | --all]
order get ORDER_ID
order create --payload JSON|@FILE [--idempotency-key K] [--no-wait]
order cancel|hold|release|approve|reject ORDER_ID [--reason TEXT] [--payload JSON|@FILE]
                                              [--idempotency-key K] [--no-wait]
invoice list [--order ORDER_ID] [--issuer ORG] [--limit N] [--cursor C | --all]
invoice get NUMBER

Each also takes `--node URL --token T --profile NAME --json` (`cli.remote`).
A write is a tx the node signs as the token's identity; by default the
command waits until it is committed and exits 0 only if it was committed
and not rejected.
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from cli.output import Column, ExitCode, print_fields, print_json, print_sections, show_time
from cli.remote import (
    client_options,
    connect,
    list_options,
    parse_time,
    print_page,
    read,
    read_list,
    read_payload,
    report_write,
    write,
    write_options,
)
from node.api.models import Invoice, Order, OrderSummary, Page


class OrderAction(NamedTuple):
    """An `omsnode order` command that acts on one order: `POST /v1/orders/{order_id}/{route}`."""

    action: str
    """The command's name."""
    route: str
    """The node's name for the action (an operator holds an order; the ledger calls it an interception)."""
    note_field: str
    """The body field that `--reason` fills."""
    help: str


ORDER_ACTIONS = (
    OrderAction("cancel", "cancel", "reason", "cancel what has not left (all of it, or the lines given in --payload)"),
    OrderAction("hold", "intercept", "reason", "hold an order before it ships (not picked nor shipped until released)"),
    OrderAction("release", "release", "note", "release a held order to its fulfilments (operators)"),
    OrderAction("approve", "approve", "note", "let an order held in review through: it is allocated (operators)"),
    OrderAction("reject", "reject", "reason", "refuse an order held in review: it is cancelled (operators)"),
)

ORDER_COLUMNS = (
    Column("order", "order_id"),
    Column("status", "status"),
    Column("channel", "channel"),
    Column("org", "org"),
    Column("external ref", "external_ref"),
    Column("total", "total"),
    Column("cur", "currency"),
    Column("created (UTC)", "created_ms", show_time),
    Column("updated (UTC)", "updated_ms", show_time),
    Column("locations", "locations"),
)
LINE_COLUMNS = (
    Column("sku", "sku"),
    Column("qty", "qty"),
    Column("unit price", "unit_price"),
    Column("discount", "discount"),
    Column("tax class", "tax_class"),
)
FULFILMENT_COLUMNS = (
    Column("fulfilment", "fulfilment_id"),
    Column("location", "location"),
    Column("status", "status"),
    Column("carrier", "carrier"),
    Column("tracking", "tracking"),
    Column("invoice", "invoice"),
)
HISTORY_COLUMNS = (
    Column("time (UTC)", "time_ms", show_time),
    Column("height", "height"),
    Column("from", "from"),
    Column("to", "to"),
    Column("by", "by"),
    Column("reason", "reason"),
)
INVOICE_COLUMNS = (
    Column("number", "number"),
    Column("issuer", "issuer"),
    Column("order", "order_id"),
    Column("credit note", "credit_note"),
    Column("cur", "currency"),
    Column("net", "net_total"),
    Column("tax", "tax_total"),
    Column("total", "total"),
    Column("time (UTC)", "time_ms", show_time),
)
INVOICE_LINE_COLUMNS = (
    Column("sku", "sku"),
    Column("qty", "qty"),
    Column("unit price", "unit_price"),
    Column("discount", "discount"),
    Column("net", "net"),
    Column("tax", "tax"),
    Column("gross", "gross"),
)


def cmd_list(args: argparse.Namespace) -> int:
    page = read_list(
        connect(args),
        "/v1/orders",
        Page[OrderSummary],
        args,
        status=args.status,
        channel=args.channel,
        location=args.location,
        external_ref=args.external_ref,
        created_min=args.created_min,
        created_max=args.created_max,
        updated_min=args.updated_min,
        updated_max=args.updated_max,
    )
    print_page(page, ORDER_COLUMNS, args.json)
    return ExitCode.OK


def cmd_get(args: argparse.Namespace) -> int:
    order = read(connect(args), f"/v1/orders/{args.order_id}", Order).model_dump(mode="json")
    if args.json:
        print_json(order)
        return ExitCode.OK
    print_fields(
        [
            ("order", order["order_id"]),
            ("status", order["status"]),
            ("channel", order["channel"]),
            ("org", order["org"]),
            ("external ref", order["external_ref"]),
            ("total", f"{order['total']} {order['currency']}"),
            ("created", f"{show_time(order['created_ms'])} UTC"),
            ("invoices", order["invoices"]),
        ]
    )
    sections = (
        ("lines", "lines", LINE_COLUMNS),
        ("fulfilments", "fulfilments", FULFILMENT_COLUMNS),
        ("history", "history", HISTORY_COLUMNS),
    )
    print_sections(order, sections)
    return ExitCode.OK


def cmd_create(args: argparse.Namespace) -> int:
    body = read_payload(args.payload)
    result = write(connect(args), "/v1/orders", body, args)
    return report_write(result, args)


def cmd_act(args: argparse.Namespace) -> int:
    action: OrderAction = args.action
    body = read_payload(args.payload) if args.payload else {}
    if args.reason is not None:
        body[action.note_field] = args.reason
    path = f"/v1/orders/{args.order_id}/{action.route}"
    result = write(connect(args), path, body, args)
    return report_write(result, args)


def cmd_invoice_list(args: argparse.Namespace) -> int:
    page = read_list(connect(args), "/v1/invoices", Page[Invoice], args, order_id=args.order, issuer=args.issuer)
    print_page(page, INVOICE_COLUMNS, args.json)
    return ExitCode.OK


def cmd_invoice_get(args: argparse.Namespace) -> int:
    invoice = read(connect(args), f"/v1/invoices/{args.number}", Invoice).model_dump(mode="json")
    if args.json:
        print_json(invoice)
        return ExitCode.OK
    print_fields([(column.header, column.show(invoice.get(column.key))) for column in INVOICE_COLUMNS])
    print_sections(invoice, (("lines", "lines", INVOICE_LINE_COLUMNS),))
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    client, lists, writes = client_options(), list_options(), write_options()
    order = sub.add_parser("order", help="orders on a node: list, get, create, cancel, hold, release, approve, reject")
    commands = order.add_subparsers(dest="order_command", required=True)
    p = commands.add_parser("list", parents=[client, lists], help="orders by status, channel, location or time")
    p.add_argument("--status", help="e.g. on_hold, released, shipped, cancelled")
    p.add_argument("--channel", help="the channel identity that placed them")
    p.add_argument("--location", help="a location of their fulfilments")
    p.add_argument("--external-ref", help="the channel's reference (with --channel, unless the token is a channel's)")
    for name in ("created-min", "created-max", "updated-min", "updated-max"):
        p.add_argument(f"--{name}", type=parse_time, metavar="T", help="ms since the epoch, or an ISO date (UTC)")
    p.set_defaults(func=cmd_list)
    p = commands.add_parser("get", parents=[client], help="one order: lines, fulfilments, history")
    p.add_argument("order_id")
    p.set_defaults(func=cmd_get)
    p = commands.add_parser("create", parents=[client, writes], help="place an order as the token's channel")
    p.add_argument("--payload", required=True, help="the order as JSON, or @FILE (@- for stdin)")
    p.set_defaults(func=cmd_create)
    for action in ORDER_ACTIONS:
        p = commands.add_parser(action.action, parents=[client, writes], help=action.help)
        p.add_argument("order_id")
        p.add_argument("--reason", help=f"sent as the tx's {action.note_field!r}")
        p.add_argument("--payload", help="more fields of the tx as JSON, or @FILE")
        p.set_defaults(func=cmd_act, action=action)

    invoice = sub.add_parser("invoice", help="invoices and credit notes on a node: list, get")
    commands = invoice.add_subparsers(dest="invoice_command", required=True)
    p = commands.add_parser("list", parents=[client, lists], help="by issuer and number, or those of one order")
    p.add_argument("--order", help="the documents of this order")
    p.add_argument("--issuer", help="the organisation that issued them")
    p.set_defaults(func=cmd_invoice_list)
    p = commands.add_parser("get", parents=[client], help="one invoice or credit note by its number")
    p.add_argument("number")
    p.set_defaults(func=cmd_invoice_get)
