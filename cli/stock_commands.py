"""`omsnode stock`, `omsnode inventory`, `omsnode journal`: stock on a node, through its API.

stock LOCATION SKU [--height H]                       one location's stock of one SKU, now or after block H
inventory [--location L] [--sku S] [--limit N] [--cursor C | --all]           on hand, reserved, available
journal [--location L] [--sku S] [--kind K] [--limit N] [--cursor C | --all]  every change of stock
trace LOT [--sku S] [--proof-dir DIR] [--limit N] [--cursor C | --all]  a lot's chain of custody, step by step

Each also takes `--node URL --token T --profile NAME --json` (`cli.remote`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.output import Column, ExitCode, print_fields, print_json, show_short, show_time
from cli.remote import client_options, connect, list_options, print_page, read, read_list
from node.api.models import JournalEntry, Page, StockAt, StockRow, TraceStep

STOCK_COLUMNS = (
    Column("location", "location"),
    Column("sku", "sku"),
    Column("on hand", "on_hand"),
    Column("reserved", "reserved"),
    Column("available", "available"),
    Column("damaged", "damaged"),
)
JOURNAL_COLUMNS = (
    Column("location", "location"),
    Column("sku", "sku"),
    Column("seq", "seq"),
    Column("kind", "kind"),
    Column("delta", "delta"),
    Column("reserved", "reserved_delta"),
    Column("bucket", "bucket"),
    Column("lot", "lot"),
    Column("document", "document"),
    Column("height", "height"),
    Column("time (UTC)", "time_ms", show_time),
    Column("tx", "tx_id", show_short),
)

TRACE_COLUMNS = (
    Column("sku", "sku"),
    Column("height", "height"),
    Column("time (UTC)", "time_ms", show_time),
    Column("kind", "kind"),
    Column("location", "location"),
    Column("org", "org"),
    Column("delta", "delta"),
    Column("document", "document"),
    Column("order", "order_id"),
    Column("tx", "tx_id", show_short),
)


def cmd_stock(args: argparse.Namespace) -> int:
    at = read(connect(args), f"/v1/inventory/{args.location}/{args.sku}", StockAt, height=args.height)
    row = at.model_dump(mode="json")
    if args.json:
        print_json(row)
    else:
        print_fields([(column.header, row[column.key]) for column in STOCK_COLUMNS] + [("at height", row["height"])])
    return ExitCode.OK


def cmd_inventory(args: argparse.Namespace) -> int:
    page = read_list(connect(args), "/v1/inventory", Page[StockRow], args, location=args.location, sku=args.sku)
    print_page(page, STOCK_COLUMNS, args.json)
    return ExitCode.OK


def cmd_journal(args: argparse.Namespace) -> int:
    page = read_list(
        connect(args), "/v1/journal", Page[JournalEntry], args, location=args.location, sku=args.sku, kind=args.kind
    )
    print_page(page, JOURNAL_COLUMNS, args.json)
    return ExitCode.OK


def cmd_trace(args: argparse.Namespace) -> int:
    """The steps of a lot; with `--proof-dir`, each step's tx proof saved there as `<height>-<tx id>.proof`."""
    proofs = Path(args.proof_dir) if args.proof_dir else None
    page = read_list(
        connect(args), f"/v1/trace/{args.lot}", Page[TraceStep], args, sku=args.sku, proof=True if proofs else None
    )
    if proofs is not None:
        proofs.mkdir(parents=True, exist_ok=True)
        for step in page.items:
            if step.proof is not None:
                (proofs / f"{step.height}-{step.tx_id}.proof").write_text(step.proof)
            step.proof = None
    print_page(page, TRACE_COLUMNS, args.json)
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    client, lists = client_options(), list_options()
    p = sub.add_parser("stock", parents=[client], help="one location's stock of one SKU, now or after a block")
    p.add_argument("location")
    p.add_argument("sku")
    p.add_argument("--height", type=int, help="as it was after this block (default: now)")
    p.set_defaults(func=cmd_stock)
    p = sub.add_parser("inventory", parents=[client, lists], help="on hand, reserved, available per location and SKU")
    p.add_argument("--location")
    p.add_argument("--sku")
    p.set_defaults(func=cmd_inventory)
    p = sub.add_parser("journal", parents=[client, lists], help="the stock journal: every change of stock and its tx")
    p.add_argument("--location")
    p.add_argument("--sku")
    p.add_argument("--kind", help="e.g. receipt, reservation, shipment")
    p.set_defaults(func=cmd_journal)
    p = sub.add_parser(
        "trace", parents=[client, lists], help="a lot's chain of custody: receipt, transfers, sale, returns"
    )
    p.add_argument("lot")
    p.add_argument("--sku", help="only this SKU's lot (lots are per SKU)")
    p.add_argument("--proof-dir", metavar="DIR", help="save each step's tx proof here (for `omsnode verify-proof`)")
    p.set_defaults(func=cmd_trace)
