"""The puller's SQLite state: a page saved in one transaction, one open dead letter per order, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.state import Counts, KnownOrder, NewDeadLetter, State


def test_a_page_is_saved_whole_or_not_at_all(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    state.save_channel("shop", "c0", 60)
    known = [KnownOrder("1", "SO1", "t1", paid=True, cancelled=False)]
    dead = [NewDeadLetter("2", "unknown_sku", "SKU GHOST is not in the catalogue", '{"id": 2}')]

    class Boom(Exception):
        pass

    with pytest.raises(Boom), state.transaction() as db:
        db.execute("UPDATE channels SET cursor = 'half' WHERE name = 'shop'")
        raise Boom
    assert state.load_cursor("shop") == "c0"
    state.save_page("shop", "c1", known, dead, Counts(pulled=2, committed=1), caught_up=True)
    reopened = State(tmp_path / "s.sqlite")
    assert (tmp_path / "s.sqlite").stat().st_mode & 0o077 == 0, "dead letters hold personal data: owner only"
    assert reopened.load_cursor("shop") == "c1"
    assert reopened.load_known("shop", ["1", "2"]) == {"1": known[0]}
    (row,) = reopened.load_channels()
    assert (row.pulled, row.committed, row.dead_lettered, row.open_dead_letters) == (2, 1, 1, 1)
    assert row.caught_up_ms is not None and row.failures == 0


def test_one_open_dead_letter_per_order_resolved_once_it_goes_through(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    state.save_channel("shop", "c0", 60)
    letter = NewDeadLetter("2", "unknown_sku", "first", "{}")
    state.save_page("shop", "c1", [], [letter], Counts(pulled=1), caught_up=False)
    state.save_page("shop", "c2", [], [NewDeadLetter("2", "unknown_sku", "again", "{}")], Counts(), caught_up=False)
    (open_letter,) = state.load_dead_letters()
    assert open_letter.message == "again"
    assert state.count_replay(open_letter.id) == 1
    state.save_page("shop", None, [KnownOrder("2", "SO2", "t", False, False)], [], Counts(committed=1), False)
    assert state.load_dead_letters() == []
    assert state.load_cursor("shop") == "c2", "a replay leaves the cursor"
    (row,) = state.load_channels()
    assert (row.dead_lettered, row.committed, row.open_dead_letters) == (1, 1, 0)


def test_a_failed_pull_keeps_the_cursor_and_counts_in_a_row(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    state.save_channel("shop", "c0", 60)
    state.save_failure("shop", "HTTP 503")
    state.save_failure("shop", "HTTP 503")
    (row,) = state.load_channels()
    assert (row.failures, row.last_error, row.cursor) == (2, "HTTP 503", "c0")
    state.save_page("shop", "c1", [], [], Counts(), caught_up=True)
    assert state.load_channels()[0].failures == 0
