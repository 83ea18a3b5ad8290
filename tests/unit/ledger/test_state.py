"""State views: savepoints, scans over layers, and isolation of what callers mutate."""

from __future__ import annotations

from ledger.encoding import encode
from ledger.state import MemoryState, StateView


def test_rollback_leaves_no_trace() -> None:
    view = StateView(MemoryState({b"stock/a": encode({"on_hand": 5})}))
    view.begin()
    view.put("stock/a", {"on_hand": 4})
    view.put("stock/b", {"on_hand": 1})
    view.rollback()
    assert view.get("stock/a") == {"on_hand": 5}
    assert view.get("stock/b") is None
    assert view.writes() == {}


def test_commit_folds_into_block_writes() -> None:
    view = StateView(MemoryState())
    view.begin()
    view.put("a", 1)
    view.commit()
    view.begin()
    view.delete("a")
    view.commit()
    assert view.writes() == {b"a": None}
    assert view.get("a") is None


def test_scan_merges_base_and_layers_in_key_order() -> None:
    base = MemoryState({b"o/1": encode(1), b"o/3": encode(3), b"p/1": encode(9)})
    view = StateView(base)
    view.put("o/2", 2)
    view.begin()
    view.delete("o/1")
    view.put("o/4", 4)
    assert list(view.scan("o/")) == [("o/2", 2), ("o/3", 3), ("o/4", 4)]


def test_scan_resumes_after_a_key() -> None:
    view = StateView(MemoryState({b"o/1": encode(1), b"o/3": encode(3), b"o/5": encode(5)}))
    view.put("o/4", 4)
    assert list(view.scan("o/", after="o/3")) == [("o/4", 4), ("o/5", 5)]
    assert list(view.scan("o/", after="o/2")) == [("o/3", 3), ("o/4", 4), ("o/5", 5)]
    assert list(view.scan("o/", after="o/5")) == []


def test_mutating_a_read_value_does_not_change_state() -> None:
    view = StateView(MemoryState())
    view.put("order", {"lines": [1]})
    order = view.get("order")
    order["lines"].append(2)
    assert view.get("order") == {"lines": [1]}
