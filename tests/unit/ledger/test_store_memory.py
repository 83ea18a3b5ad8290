"""The store's memory does not follow its size: LevelDB maps at most `MAX_OPEN_FILES` - 10 table files at once.

LevelDB reads its tables through memory maps, so every page read stays in the process's resident memory until
the table is closed. With 1 MiB tables (the least LevelDB allows) and about 100 of them (written in
random order and compacted, so none is a whole memtable), reading every record
back in random order must leave at most 64 tables mapped, and at most 64 tables' worth of their pages resident.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from ledger.store import MAX_OPEN_FILES, Store

TABLE = 1024 * 1024
"""The test's table size."""

VALUE = 4096
"""Bytes of each record."""

RECORDS = 100 * TABLE // VALUE
"""About 100 tables of records."""

OPEN_TABLES = MAX_OPEN_FILES - 10
"""Tables LevelDB keeps open: the rest of its open files are its log, manifest and the like."""


def mapped_tables(folder: Path) -> dict[str, int]:
    """The table files of `folder` mapped into this process, and the KiB of each resident now."""
    resident: dict[str, int] = {}
    current = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 6:
                current = fields[5] if fields[5].startswith(str(folder)) and fields[5].endswith(".ldb") else None
            elif current is not None and fields[0] == "Rss:":
                resident[current] = resident.get(current, 0) + int(fields[1])
    return resident


def test_reading_a_store_many_times_the_open_tables_leaves_at_most_those_tables_resident(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    store = Store(folder, table_bytes=TABLE)
    try:
        keys = [f"record-{i:06d}".encode() for i in range(RECORDS)]
        random.Random(1).shuffle(keys)
        for start in range(0, RECORDS, 1000):
            store.write_local({key: os.urandom(VALUE) for key in keys[start : start + 1000]}, sync=False)
        store.raw_db().compact_range()
        random.Random(2).shuffle(keys)
        for key in keys:
            assert store.get_local(key) is not None
        tables = [name for name in os.listdir(folder) if name.endswith(".ldb")]
        mapped = mapped_tables(folder)
    finally:
        store.close()
    assert len(tables) > OPEN_TABLES + 20, "the store must hold more tables than LevelDB keeps open"
    assert 0 < len(mapped) <= OPEN_TABLES, f"{len(mapped)} of {len(tables)} tables mapped"
