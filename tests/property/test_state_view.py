"""A `StateView` answers every read as a plain dict of its committed and open writes would.

Hypothesis draws runs of puts, deletes, reads, scans and savepoints (begun,
committed, rolled back) over a small base, and compares every answer of the
view (and after each step, a read of every key) with a model: a stack of plain dicts over the base. The view keeps what
it read (decoded, per key) and sorts each layer's keys for its scans; none of
that may ever show: a read after a write, a rollback or a commit answers what
the model does, and the block's net writes are the model's.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import encode
from ledger.state import MemoryState, StateView

KEYS = ["a/1", "a/2", "a/3", "ab/1", "b/1", "b/2"]
"""Keys of the runs: two that share a prefix with another, so scans meet their neighbours."""

VALUES = st.one_of(
    st.integers(0, 3),
    st.fixed_dictionaries({"n": st.integers(0, 3)}),
    st.fixed_dictionaries({"lines": st.lists(st.integers(0, 3), max_size=2)}),
    st.lists(st.text("xy", max_size=2), max_size=2),
)
"""Flat and nested values, as state records are."""

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(KEYS), VALUES),
        st.tuples(st.just("delete"), st.sampled_from(KEYS)),
        st.tuples(st.just("get"), st.sampled_from(KEYS)),
        st.tuples(st.just("mutate"), st.sampled_from(KEYS)),
        st.tuples(st.just("scan"), st.sampled_from(["a", "a/", "ab", "b/", ""]), st.sampled_from([None, *KEYS])),
        st.tuples(st.just("begin")),
        st.tuples(st.just("commit")),
        st.tuples(st.just("rollback")),
    ),
    max_size=60,
)


def _model_get(layers: list[dict[str, Any]], key: str) -> Any:
    for layer in reversed(layers):
        if key in layer:
            return layer[key]
    return None


@settings(max_examples=200, deadline=None)
@given(base=st.dictionaries(st.sampled_from(KEYS), VALUES), ops=OPS)
def test_a_view_answers_as_a_stack_of_dicts(base: dict[str, Any], ops: list[tuple[Any, ...]]) -> None:
    view = StateView(MemoryState({key.encode(): encode(value) for key, value in base.items()}))
    model: list[dict[str, Any]] = [dict(base), {}]
    for op in ops:
        name = op[0]
        if name == "put":
            view.put(op[1], op[2])
            model[-1][op[1]] = op[2]
        elif name == "delete":
            view.delete(op[1])
            model[-1][op[1]] = None
        elif name == "get":
            assert view.get(op[1]) == _model_get(model, op[1])
        elif name == "mutate":
            value = view.get(op[1])
            if isinstance(value, dict):
                value["n"] = 99
            elif isinstance(value, list):
                value.append(99)
            assert view.get(op[1]) == _model_get(model, op[1])
        elif name == "scan":
            prefix, after = op[1], op[2]
            expected = sorted(
                (key, value)
                for key in KEYS
                if key.startswith(prefix) and (after is None or key > after)
                for value in [_model_get(model, key)]
                if value is not None
            )
            assert list(view.scan(prefix, after)) == expected
        elif name == "begin":
            view.begin()
            model.append({})
        elif name == "commit" and len(model) > 2:
            view.commit()
            top = model.pop()
            model[-1].update(top)
        elif name == "rollback" and len(model) > 2:
            view.rollback()
            model.pop()
        assert {key: view.get(key) for key in KEYS} == {key: _model_get(model, key) for key in KEYS}
    while len(model) > 2:
        view.commit()
        top = model.pop()
        model[-1].update(top)
    expected_writes = {key.encode(): None if value is None else encode(value) for key, value in model[1].items()}
    assert view.writes() == expected_writes
