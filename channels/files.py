"""Files: CSV and JSON files of orders dropped in a folder, read one file a page, moved aside when done.

A JSON file holds a list of orders of the generic format (`channels.generic`)
or `{"orders": [...]}`. A CSV file has a header and one row per order line:
`id`, `currency`, `updated_at`, `sku`, `qty`, `price`, and optionally
`discount`, `shipping`, `customer_ref`, `region`, `lat`, `lon`, `paid`,
`cancelled`; the rows of one `id` are one order, its order fields taken from
its first row. Files are read oldest first (by modification time, then
name), whatever the dates in them (`since` does not apply). A file that
cannot be read as either is one dead letter holding its text.

The cursor names the file of the page (name and SHA-256 of its bytes): the
file is moved to `done_dir` only after its page is saved, and a file found
still in the folder under the saved cursor (the puller stopped between
saving and moving) is moved without being read again.

Config keys: `path` (the folder), `done_dir` (default `<path>/done`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from channels.config import ChannelConfig, ConfigError, read_text, require_text
from channels.generic import map_generic_order
from channels.records import ChannelOrder, Page

KEYS = frozenset({"path", "done_dir"})
"""The adapter's own config keys."""

SUFFIXES = (".json", ".csv")

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest file read; a larger one is a dead letter."""

ORDER_COLUMNS = ("currency", "updated_at", "customer_ref", "shipping")
"""CSV columns that are fields of the order (the others of its lines or delivery)."""

WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")

FLAGS = {"true": True, "1": True, "false": False, "0": False}
"""How a CSV writes `paid` and `cancelled` (anything else is left for the mapping to refuse)."""


class FilesAdapter:
    """The files of one folder, one page each."""

    def __init__(self, config: ChannelConfig, secret: str | None) -> None:
        self.folder = Path(require_text(config.settings, "path", config.name))
        done = read_text(config.settings, "done_dir", config.name)
        self.done_dir = self.folder / "done" if done is None else Path(done)
        if not self.folder.is_dir():
            raise ConfigError(f"channel {config.name!r}: path {self.folder} is not a folder")

    def close(self) -> None:
        """Nothing held open."""

    def start_cursor(self, since: datetime) -> str:
        return ""

    def pending(self) -> list[Path]:
        """The files waiting in the folder, oldest first."""
        files = [p for p in self.folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def fetch(self, cursor: str) -> Page:
        files = self.pending()
        if files and name_file(files[0]) == cursor:
            self.finish(cursor)
            files = files[1:]
        if not files:
            return Page(orders=[], cursor=cursor, caught_up=True)
        return Page(orders=read_orders(files[0]), cursor=name_file(files[0]), caught_up=len(files) == 1)

    def finish(self, cursor: str) -> None:
        """Move the file of a saved page aside."""
        name = cursor.rpartition(":")[0]
        source = self.folder / name
        if cursor and source.exists() and name_file(source) == cursor:
            self.done_dir.mkdir(parents=True, exist_ok=True)
            source.replace(self.done_dir / name)

    def map_order(self, raw: Any) -> ChannelOrder:
        return map_generic_order(raw)


def name_file(path: Path) -> str:
    """A file's cursor: its name and the SHA-256 of its bytes."""
    return f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def read_orders(path: Path) -> list[Any]:
    """The orders of a file, or the file's text alone when it cannot be read as orders."""
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        return [f"{path.name}: {len(data)} bytes, over {MAX_FILE_BYTES}"]
    try:
        text = data.decode("utf-8-sig")
        if path.suffix.lower() == ".json":
            document = json.loads(text, parse_float=Decimal)
            orders = document.get("orders") if isinstance(document, dict) else document
        else:
            orders = read_csv_orders(text)
    except (UnicodeDecodeError, ValueError, RecursionError, csv.Error):
        return [data.decode("utf-8", errors="replace")]
    return orders if isinstance(orders, list) else [text]


def read_csv_orders(text: str) -> list[dict[str, Any]]:
    """CSV rows, one per line, as orders of the generic format (see the module)."""
    orders: dict[str, dict[str, Any]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        order_id = row.get("id") or ""
        order = orders.get(order_id)
        if order is None:
            order = {"id": order_id or None, "lines": []}
            order.update({key: row[key] for key in ORDER_COLUMNS if row.get(key)})
            for flag in ("paid", "cancelled"):
                if row.get(flag):
                    order[flag] = FLAGS.get(row[flag].lower(), row[flag])
            if row.get("region") or row.get("lat"):
                order["delivery"] = {key: row[key] for key in ("region", "lat", "lon") if row.get(key)}
            orders[order_id] = order
        qty = row.get("qty") or ""
        whole = int(qty) if WHOLE_NUMBER.fullmatch(qty) else qty
        line = {"sku": row.get("sku"), "qty": whole, "price": row.get("price")}
        if row.get("discount"):
            line["discount"] = row["discount"]
        order["lines"].append(line)
    return list(orders.values())
