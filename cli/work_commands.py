"""A store's and an operator's daily work, one command each, through a node's API.

pick FULFILMENT_ID                                        released -> picked
ship FULFILMENT_ID --carrier C [--tracking T]             stock out, invoiced
deliver FULFILMENT_ID                                     shipped -> delivered
decline FULFILMENT_ID [--reason TEXT]                     the location cannot serve it: allocated elsewhere
receive LOCATION SKU=QTY[@LOT]... [--document D]          goods in (a document is taken once per location)
transfer send FROM TO SKU=QTY[@LOT]... [--document D]     goods out of FROM now, in at TO once accepted
transfer accept|refuse TRANSFER_ID [--reason TEXT]        the receiving location takes the goods, or sends them back
count report LOCATION SKU=QTY... [--full] [--reference R] a physical count: its differences against the ledger
count approve LOCATION COUNT_ID --reason R                post a count's differences (operators)
return request ORDER_ID SKU=QTY... [--reason TEXT] [--reference R]
return receive RETURN_ID --location L [--condition damaged] [SKU=QTY...]   goods back; credit notes issued
return cancel RETURN_ID                                   the customer will not send (the rest of) the goods

Approving an order held in review, and releasing one held before it ships,
are `omsnode order approve ORDER_ID` and `omsnode order release ORDER_ID`.

Each is one `POST` of the node's API (`WorkCommand.path`): the node signs
the tx as the token's identity. Each also takes `--node URL --token T
--profile NAME --json` (`cli.remote`) and `--idempotency-key K --no-wait`:
by default the command waits until the tx is committed and exits 0 only if
it was committed and not rejected.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NamedTuple

from cli.remote import client_options, connect, parse_line, report_write, write, write_options

LINES_HELP = "SKU=QTY, or SKU=QTY@LOT for a lot, e.g. TEE-M=12"
COUNT_REASONS = ("shrinkage", "damage", "found", "miscount", "theft")
"""Why a count's differences are posted (the `reason` of `stock.count.approve`)."""


class WorkCommand(NamedTuple):
    """One command: its place (`group` None: a top-level command), the route it posts to, and its arguments."""

    group: str | None
    name: str
    help: str
    path: str
    """The route under `/v1`; `{name}` in it is filled from the argument of that name."""
    arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the command's own arguments; each argument whose `dest` is a payload field goes into the body."""


def fulfilment_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fulfilment_id", metavar="FULFILMENT_ID")


def ship_arguments(p: argparse.ArgumentParser) -> None:
    fulfilment_arguments(p)
    p.add_argument("--carrier", required=True, help="who carries the parcel")
    p.add_argument("--tracking", help="the carrier's tracking code")


def decline_arguments(p: argparse.ArgumentParser) -> None:
    fulfilment_arguments(p)
    p.add_argument("--reason", help="why the location cannot serve it")


def receive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("location", metavar="LOCATION")
    p.add_argument("lines", metavar="SKU=QTY", nargs="+", type=parse_line, help=LINES_HELP)
    p.add_argument("--document", help="delivery note or purchase order (taken once per location)")


def transfer_send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="FROM", help="the location the goods leave")
    p.add_argument("to", metavar="TO", help="the location that receives them")
    p.add_argument("lines", metavar="SKU=QTY", nargs="+", type=parse_line, help=LINES_HELP)
    p.add_argument("--document", help="the transfer's document (default: its transfer number)")


def transfer_answer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("transfer_id", metavar="TRANSFER_ID")
    p.add_argument("--reason")


def count_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("location", metavar="LOCATION")
    p.add_argument("counts", metavar="SKU=QTY", nargs="+", type=parse_line, help="units counted of each SKU")
    p.add_argument("--full", action="store_const", const=True, help="SKUs stocked but not listed count as 0")
    p.add_argument("--reference", help="the count sheet's reference")


def count_approve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("location", metavar="LOCATION")
    p.add_argument("count", metavar="COUNT_ID", help="the count's tx id, as `count report` printed it")
    p.add_argument("--reason", required=True, choices=COUNT_REASONS, help="why stock and count differ")


def return_request_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", metavar="ORDER_ID")
    p.add_argument("lines", metavar="SKU=QTY", nargs="+", type=parse_line, help="the goods sent back")
    p.add_argument("--reason")
    p.add_argument("--reference", help="the channel's return reference (taken once per order)")


def return_receive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("return_id", metavar="RETURN_ID")
    p.add_argument("lines", metavar="SKU=QTY", nargs="*", type=parse_line, help="what arrived (default: all awaited)")
    p.add_argument("--location", required=True, help="where the goods arrived")
    p.add_argument("--condition", choices=("sellable", "damaged"), help="of the goods (default: sellable)")


def return_cancel_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("return_id", metavar="RETURN_ID")


WORK_COMMANDS = (
    WorkCommand(
        None,
        "pick",
        "a fulfilment is picked at its location",
        "/fulfilments/{fulfilment_id}/pick",
        fulfilment_arguments,
    ),
    WorkCommand(
        None, "ship", "a fulfilment leaves: stock out, invoiced", "/fulfilments/{fulfilment_id}/ship", ship_arguments
    ),
    WorkCommand(
        None,
        "deliver",
        "a shipped fulfilment reached the customer",
        "/fulfilments/{fulfilment_id}/deliver",
        fulfilment_arguments,
    ),
    WorkCommand(
        None,
        "decline",
        "the location cannot serve a fulfilment",
        "/fulfilments/{fulfilment_id}/decline",
        decline_arguments,
    ),
    WorkCommand(None, "receive", "goods in at a location", "/inventory/receipts", receive_arguments),
    WorkCommand("transfer", "send", "send goods to another location", "/inventory/transfers", transfer_send_arguments),
    WorkCommand(
        "transfer",
        "accept",
        "take a transfer in",
        "/inventory/transfers/{transfer_id}/accept",
        transfer_answer_arguments,
    ),
    WorkCommand(
        "transfer",
        "refuse",
        "send a transfer back",
        "/inventory/transfers/{transfer_id}/refuse",
        transfer_answer_arguments,
    ),
    WorkCommand(
        "count", "report", "report a physical count (changes no stock)", "/inventory/counts", count_report_arguments
    ),
    WorkCommand(
        "count",
        "approve",
        "post a count's differences as adjustments (operators)",
        "/inventory/counts/{count}/approve",
        count_approve_arguments,
    ),
    WorkCommand("return", "request", "a customer sends delivered goods back", "/returns", return_request_arguments),
    WorkCommand(
        "return",
        "receive",
        "returned goods arrived: back in stock, credit notes issued",
        "/returns/{return_id}/receive",
        return_receive_arguments,
    ),
    WorkCommand(
        "return",
        "cancel",
        "the customer will not send the goods",
        "/returns/{return_id}/cancel",
        return_cancel_arguments,
    ),
)
"""Every command of this module."""

GROUP_HELP = {
    "transfer": "goods between locations: send, accept, refuse",
    "count": "physical counts: report, approve",
    "return": "returns of delivered goods: request, receive, cancel",
}

NOT_PAYLOAD = frozenset(
    {"func", "work", "command", *(f"{group}_command" for group in GROUP_HELP)}
    | {"node", "token", "profile", "json", "idempotency_key", "no_wait"}
)
"""Parsed arguments that say which command and how to send, not what: never part of the body."""


def cmd_work(args: argparse.Namespace) -> int:
    command: WorkCommand = args.work
    fields = {("from" if key == "source" else key): value for key, value in vars(args).items()}
    in_path = {name for name in fields if "{" + name + "}" in command.path}
    body = {
        key: value
        for key, value in fields.items()
        if key not in NOT_PAYLOAD and key not in in_path and value is not None and value != []
    }
    path = "/v1" + command.path.format(**{name: fields[name] for name in in_path})
    return report_write(write(connect(args), path, body, args), args)


def add_parser(sub: Any) -> None:
    parents = [client_options(), write_options()]
    groups: dict[str, Any] = {}
    for command in WORK_COMMANDS:
        where = sub
        if command.group is not None:
            if command.group not in groups:
                group = sub.add_parser(command.group, help=GROUP_HELP[command.group])
                groups[command.group] = group.add_subparsers(dest=f"{command.group}_command", required=True)
            where = groups[command.group]
        p = where.add_parser(command.name, parents=parents, help=command.help)
        command.arguments(p)
        p.set_defaults(func=cmd_work, work=command)
