"""The files adapter: JSON and CSV files read one a page, oldest first, moved aside only once their page is saved."""

from __future__ import annotations

import json
import os
from pathlib import Path

from channels.files import FilesAdapter
from channels.records import Line
from tests.unit.channels.conftest import make_config

CSV = """id,currency,updated_at,customer_ref,sku,qty,price,discount,region,paid,cancelled
F-1,EUR,2026-12-01T10:00:00Z,c-9,TS-M,2,19.99,1.00,LIS,true,
F-1,EUR,2026-12-01T10:00:00Z,c-9,BOOK-OMS,1,29.00,,LIS,true,
F-2,EUR,2026-12-01T10:01:00Z,,JEANS-32,two,49.99,,,false,
"""


def make_adapter(folder: Path) -> FilesAdapter:
    return FilesAdapter(make_config(adapter="files", path=str(folder)), None)


def drop(folder: Path, name: str, text: str, mtime: int) -> Path:
    path = folder / name
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_csv_rows_of_one_id_are_one_order(tmp_path: Path) -> None:
    drop(tmp_path, "a.csv", CSV, 1)
    adapter = make_adapter(tmp_path)
    page = adapter.fetch("")
    first = adapter.map_order(page.orders[0])
    assert first.order_id == "F-1"
    assert first.lines == (Line("TS-M", 2, 1999, 100), Line("BOOK-OMS", 1, 2900, 0))
    assert first.paid and first.region == "LIS" and first.customer_ref == "customer:c-9"
    assert page.orders[1]["lines"][0]["qty"] == "two"


def test_files_go_oldest_first_and_are_moved_once_saved(tmp_path: Path) -> None:
    orders = [{"id": "J-1", "currency": "EUR", "updated_at": "2026-12-01T10:00:00Z", "lines": []}]
    drop(tmp_path, "b.json", json.dumps({"orders": orders}), 2)
    drop(tmp_path, "a.csv", CSV, 1)
    drop(tmp_path, "c.json", "{not json", 3)
    adapter = make_adapter(tmp_path)
    page = adapter.fetch("")
    assert page.cursor.startswith("a.csv:") and not page.caught_up
    again = adapter.fetch("")
    assert again.cursor == page.cursor, "not moved until its page is saved"
    after_crash = adapter.fetch(page.cursor)
    assert after_crash.cursor.startswith("b.json:"), "a saved file left behind is moved, not read again"
    assert (tmp_path / "done" / "a.csv").exists()
    adapter.finish(after_crash.cursor)
    last = adapter.fetch(after_crash.cursor)
    assert last.caught_up and last.orders == ["{not json"]
    adapter.finish(last.cursor)
    assert adapter.fetch(last.cursor).orders == []
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.csv", "b.json", "c.json"]
