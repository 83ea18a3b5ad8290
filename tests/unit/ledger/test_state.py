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


def test_a_read_kept_is_forgotten_when_its_key_is_written() -> None:
    view = StateView(MemoryState({b"location/a": encode({"active": True})}))
    assert view.get("location/a") == {"active": True}
    view.begin()
    view.put("location/a", {"active": False})
    assert view.get("location/a") == {"active": False}
    view.begin()
    view.delete("location/a")
    assert view.get("location/a") is None
    view.rollback()
    assert view.get("location/a") == {"active": False}
    view.rollback()
    assert view.get("location/a") == {"active": True}


def test_a_savepoint_rolled_back_takes_what_was_read_of_its_writes_with_it() -> None:
    view = StateView(MemoryState())
    assert view.get("sku/a") is None
    view.begin()
    view.put("sku/a", {"price": 5})
    assert view.get("sku/a") == {"price": 5}
    assert list(view.scan("sku/")) == [("sku/a", {"price": 5})]
    view.rollback()
    assert view.get("sku/a") is None
    assert list(view.scan("sku/")) == []


def test_a_scan_answers_the_values_it_began_with_and_keeps_none_written_since() -> None:
    view = StateView(MemoryState({b"o/1": encode({"n": 1}), b"o/2": encode({"n": 2})}))
    entries = view.scan("o/")
    assert next(entries) == ("o/1", {"n": 1})
    view.put("o/2", {"n": 3})
    assert next(entries) == ("o/2", {"n": 2})
    assert view.get("o/2") == {"n": 3}


def test_each_read_of_a_kept_record_is_a_copy_of_its_own() -> None:
    view = StateView(MemoryState({b"location/a": encode({"lat": 1}), b"order/1": encode({"lines": [1]})}))
    first = view.get("location/a")
    first["lat"] = 2
    assert view.get("location/a") == {"lat": 1}
    order = view.get("order/1")
    order["lines"].append(2)
    assert view.get("order/1") == {"lines": [1]}
