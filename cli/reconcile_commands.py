"""`omsnode reconcile stock` and `omsnode reconcile finance`: the ledger against a WMS, an ERP and finance.

reconcile stock FILE [--location L] [--as-of T] [--partial]    a stock snapshot against the ledger at its time
reconcile finance --day YYYY-MM-DD [--limit N]                 a day's money, and the orders that disagree

Each also takes `--node URL --token T --profile NAME --json` (`cli.remote`).
A reconciliation is a question whose answer may be "they differ": the
command prints the differences (a table, or the node's answer as JSON) and
exits 1 when there is one, 0 when everything agrees, so a nightly script can
branch on it; 2 to 6 keep their meaning for every command (`ExitCode`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from cli.output import Column, ExitCode, UsageError, note, print_fields, print_json, print_sections, progress, show_time
from cli.remote import client_options, connect, parse_time, read
from cli.stock_commands import JOURNAL_COLUMNS
from node.api.models import FinanceReconciliation, StockReconciliation

EXIT_CODES = (
    "exit status: 0 when the ledger and the other side agree; 1 when they differ (the differences are printed); "
    "2 to 6 as for every command (usage, refused, token, unreachable, node error)"
)
"""What the help of each reconciliation says of its exit status."""

DIFFERENCE_COLUMNS = (
    Column("sku", "sku"),
    Column("snapshot", "snapshot"),
    Column("ledger", "ledger"),
    Column("difference", "difference"),
    Column("on hand now", "on_hand"),
    Column("reserved now", "reserved"),
    Column("moves since", "moves"),
    Column("problem", "problem"),
)
TOTAL_COLUMNS = (
    Column("org", "org"),
    Column("cur", "currency"),
    Column("captured", "captured"),
    Column("refunded", "refunded"),
    Column("invoiced", "invoiced"),
    Column("credited", "credited"),
)
FLAGGED_COLUMNS = (
    Column("order", "order_id"),
    Column("org", "org"),
    Column("channel", "channel"),
    Column("cur", "currency"),
    Column("terms", "payment_terms"),
    Column("status", "status"),
    Column("captured", "captured"),
    Column("refunded", "refunded"),
    Column("invoiced", "invoiced"),
    Column("credited", "credited"),
    Column("difference", "difference"),
    Column("reason", "reason"),
)


def read_snapshot_file(name: str) -> str:
    """The text of a snapshot file (`-`: stdin)."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the snapshot from {name}: {exc}") from exc


def make_stock_request(text: str, args: argparse.Namespace) -> tuple[bytes, str, dict[str, Any]]:
    """The body, content type and query of `POST /v1/reconciliations/stock` for a JSON or CSV snapshot.

    A JSON snapshot names its location and time itself (the options, when given, replace them); a CSV one
    has only `sku` and `qty` columns, so the options must say where and when it was taken."""
    if text.lstrip().startswith("{"):
        try:
            snapshot = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"the snapshot is not valid JSON: {exc}") from exc
        overrides = {"location": args.location, "as_of": args.as_of, "full": False if args.partial else None}
        snapshot.update({key: value for key, value in overrides.items() if value is not None})
        return json.dumps(snapshot).encode(), "application/json", {}
    if args.location is None or args.as_of is None:
        raise UsageError("a CSV snapshot needs --location and --as-of (a JSON one may name them itself)")
    query = {"location": args.location, "as_of": str(args.as_of), "full": "false" if args.partial else "true"}
    return text.encode(), "text/csv", query


def cmd_stock(args: argparse.Namespace) -> int:
    body, content_type, query = make_stock_request(read_snapshot_file(args.file), args)
    reply = connect(args).request(
        "POST", "/v1/reconciliations/stock", content=body, content_type=content_type, params=query
    )
    report = StockReconciliation.model_validate(reply)
    answer = report.model_dump(mode="json")
    if args.json:
        print_json(answer)
    else:
        print_fields(
            [
                ("location", answer["location"]),
                ("as of", f"{show_time(answer['as_of_ms'])} UTC"),
                ("compared", answer["compared"]),
                ("matched", answer["matched"]),
            ]
        )
        rows = [
            {**d, "on_hand": d["now"]["on_hand"], "reserved": d["now"]["reserved"], "moves": len(d["since"])}
            for d in answer["differences"]
        ]
        moves = [entry for d in answer["differences"] for entry in d["since"]]
        print_sections(
            {"differences": rows, "moves": moves},
            (
                ("differences", "differences", DIFFERENCE_COLUMNS),
                ("moved since the snapshot", "moves", JOURNAL_COLUMNS),
            ),
        )
    if not report.differences:
        return ExitCode.OK
    note(f"{len(report.differences)} of {report.compared} SKUs differ from the ledger")
    return ExitCode.FAILED


def cmd_finance(args: argparse.Namespace) -> int:
    client = connect(args)
    params = {"day": args.day, "limit": args.limit}
    flagged = []
    with progress("page", args.json) as bar:
        while True:
            page = read(client, "/v1/reconciliations/finance", FinanceReconciliation, **params)
            flagged.extend(page.flagged)
            bar.update(1)
            if page.next_cursor is None:
                break
            params["cursor"] = page.next_cursor
    report = page.model_copy(update={"flagged": flagged})
    answer = report.model_dump(mode="json")
    if args.json:
        print_json(answer)
    else:
        print_fields([("day", answer["day"]), ("orders that disagree", len(flagged))])
        print_sections(
            answer,
            (("organisations", "organisations", TOTAL_COLUMNS), ("orders that disagree", "flagged", FLAGGED_COLUMNS)),
        )
    if not flagged:
        return ExitCode.OK
    note(f"orders of {answer['day']} whose paid and documented amounts differ: {len(flagged)}")
    return ExitCode.FAILED


def parse_day(text: str) -> str:
    """A UTC day, `YYYY-MM-DD`."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def add_parser(sub: Any) -> None:
    client = client_options()
    reconcile = sub.add_parser("reconcile", help="the ledger against a WMS's or ERP's stock, and a day's money")
    commands = reconcile.add_subparsers(dest="reconcile_command", required=True)
    p = commands.add_parser(
        "stock",
        parents=[client],
        help="a location's stock snapshot (CSV or JSON) against the ledger's stock at the snapshot's time",
        description="Compare a WMS's or ERP's count of a location with the ledger's on hand (sellable) at the time "
        "of the count; each SKU that differs is shown with the stock movements since, which often explain it.",
        epilog=EXIT_CODES,
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="the snapshot (- for stdin): CSV with a header naming sku and qty (or quantity), or JSON "
        '{"location", "as_of", "lines": [{"sku", "qty"}]}',
    )
    p.add_argument("--location", help="where the count was taken (required for CSV)")
    p.add_argument(
        "--as-of",
        type=parse_time,
        metavar="T",
        help="when: ms since the epoch, or an ISO date and time, UTC unless it names its offset (required for CSV)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="compare only the SKUs the snapshot lists (else one it leaves out counts as 0)",
    )
    p.set_defaults(func=cmd_stock)
    p = commands.add_parser(
        "finance",
        parents=[client],
        help="a day's captured, refunded, invoiced and credited amounts, and the orders where they disagree",
        description="What each organisation captured and refunded (on the channel's organisation) and invoiced "
        "and credited (on the issuer) on a UTC day, and every order touched that day whose paid amount differs "
        "from its documented amount at the end of the day, with a reason; every page is read.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--day", required=True, type=parse_day, metavar="YYYY-MM-DD", help="a UTC day of block time")
    p.add_argument("--limit", type=int, metavar="N", help="orders that disagree per page read (the node's default)")
    p.set_defaults(func=cmd_finance)
