"""Canonical encoding: round trips, key order, and refusals."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode, encode, encode_spliced, hash_value
from ledger.errors import EncodingError

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20) | st.binary(max_size=20)
ledger_data = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@given(ledger_data)
def test_round_trip(value: object) -> None:
    assert decode(encode(value)) == value


@given(st.dictionaries(st.text(max_size=8), st.integers(0, 9), min_size=2, max_size=8))
def test_key_order_does_not_change_bytes(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert encode(mapping) == encode(reversed_mapping)
    assert hash_value(mapping) == hash_value(reversed_mapping)


@given(ledger_data, st.floats(allow_nan=False))
def test_float_anywhere_is_refused(value: object, number: float) -> None:
    with pytest.raises(EncodingError, match="float"):
        encode({"inner": [value, {"amount": number}]})


def test_refusal_names_the_path() -> None:
    with pytest.raises(EncodingError, match=r"\$\.lines\[1\]\.price"):
        encode({"lines": [{"price": 1}, {"price": 1.5}]})


@pytest.mark.parametrize("value", [{1: "int key"}, {"s": {1, 2}}, {"big": 2**64}, object()])
def test_non_ledger_values_are_refused(value: object) -> None:
    with pytest.raises(EncodingError):
        encode(value)


def test_decode_refuses_floats_and_junk() -> None:
    import msgpack

    with pytest.raises(EncodingError, match="float"):
        decode(msgpack.packb({"a": [1.25]}))
    with pytest.raises(EncodingError):
        decode(b"\xc1")
    with pytest.raises(EncodingError):
        decode(msgpack.packb(msgpack.ExtType(5, b"x")))


@given(st.binary(max_size=64))
def test_decode_never_crashes_on_junk(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        decode(data)


@given(ledger_data, st.lists(ledger_data, max_size=4), ledger_data)
def test_spliced_parts_give_the_bytes_of_the_whole(value: object, items: list[object], other: object) -> None:
    whole = {"z": other, "a": value, "m": items}
    assert encode_spliced({"z": other}, {"a": encode(value), "m": [encode(item) for item in items]}) == encode(whole)


def test_splicing_still_checks_the_fields_it_encodes() -> None:
    with pytest.raises(EncodingError, match="float"):
        encode_spliced({"price": 1.5}, {"block": encode({})})
