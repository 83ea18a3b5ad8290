"""Printing for the CLI: tables and fields for people, JSON for scripts, one-line errors, and the exit codes.

A command prints its result on stdout and nothing else there (a table, a few
`name: value` lines, or one JSON document with `--json`); hints, progress
bars and errors go to stderr. The exit code says how it went, the same way
for every command (`ExitCode`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, NamedTuple

from tqdm import tqdm


class ExitCode(IntEnum):
    """What a script can tell from `omsnode`'s exit status."""

    OK = 0
    FAILED = 1
    """Done but not done well: a tx committed as rejected or not committed in time, a broken chain, a
    reconciliation that found differences, or a local failure (a missing file, a refused token change)."""
    USAGE = 2
    """The command line is wrong: an unknown command or option, a missing argument, bad JSON, no such profile."""
    REFUSED = 3
    """The node refused the request (4xx other than 401/403): not found, invalid, a conflict, over the rate."""
    AUTH = 4
    """The node refused the token: none or unknown (401), or without the scope or role (403)."""
    UNREACHABLE = 5
    """No answer from the node: connection refused, no such host, timed out."""
    NODE_ERROR = 6
    """The node failed (5xx): an internal error, or too busy to take the request (503)."""


def exit_code_of_status(status: int) -> ExitCode:
    """The exit code for a node's error answer with HTTP `status`."""
    if status in (401, 403):
        return ExitCode.AUTH
    return ExitCode.NODE_ERROR if status >= 500 else ExitCode.REFUSED


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit code `USAGE`)."""


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def print_json_line(value: Any) -> None:
    """One JSON document on one line, flushed at once (for streams that a script reads line by line)."""
    print(json.dumps(value, sort_keys=True, separators=(",", ":")), flush=True)


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> int:
    """Print `omsnode: error: message` to stderr and return the exit code."""
    print(f"omsnode: error: {message}", file=sys.stderr)
    return int(code)


def note(message: str) -> None:
    """A hint for people beside the result (stderr, so that stdout stays the result alone)."""
    print(message, file=sys.stderr)


def show_value(value: Any) -> str:
    """A JSON value as a table cell: `-` for null, yes/no, lists comma-joined, maps as compact JSON."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(show_value(item) for item in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def show_time(ms: Any) -> str:
    """A ledger time (milliseconds since the epoch) as UTC `YYYY-MM-DD HH:MM:SS`."""
    if not isinstance(ms, int):
        return show_value(ms)
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def show_short(value: Any) -> str:
    """A long hex id cut to 16 characters."""
    return show_value(value)[:16]


class Column(NamedTuple):
    """One column of a table: its header, the row's field, and how the field shows."""

    header: str
    key: str
    show: Callable[[Any], str] = show_value


def print_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column]) -> None:
    """Rows under a header, each column as wide as its widest cell; numbers right-aligned."""
    cells = [[column.show(row.get(column.key)) for column in columns] for row in rows]
    numeric = [all(_is_number(line[i]) for line in cells) and bool(cells) for i in range(len(columns))]
    widths = [max([len(column.header)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    for line in [[column.header for column in columns], *cells]:
        padded = [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(line, widths, numeric, strict=True)]
        print("  ".join(padded).rstrip())


def _is_number(cell: str) -> bool:
    return cell.lstrip("-").isdigit() or cell == "-"


def print_sections(record: dict[str, Any], sections: tuple[tuple[str, str, tuple[Column, ...]], ...]) -> None:
    """Sub-tables of a record: a title line, then the table of its list field."""
    for title, key, columns in sections:
        print(f"\n{title}:")
        print_table([row for row in record.get(key, []) if row], columns)


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """`name: value` lines, the names right-aligned."""
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name:>{width}}: {value if isinstance(value, str) else show_value(value)}")


def progress(unit: str, quiet: bool) -> tqdm[Any]:
    """A progress bar on stderr (a count and a rate), shown only to a person at a terminal."""
    return tqdm(unit=unit, disable=quiet or not sys.stderr.isatty(), leave=False)


def print_tx(status: Mapping[str, Any]) -> None:
    """Where a tx stands (`TxStatus` or `WriteResult` as JSON): status, then height and receipt once committed."""
    print(f"tx {status['tx_id']}: {status['status']}")
    receipt = status.get("receipt")
    if receipt:
        print(f"  at height {status['height']}: {receipt['code']} {receipt['message']}".rstrip())
        if receipt.get("result"):
            print(f"  result: {json.dumps(receipt['result'], sort_keys=True)}")
