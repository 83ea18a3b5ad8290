"""The canonical encoding against a plain reference of its rules, over values hypothesis builds.

`reference_encode` writes canonical msgpack by hand, one `struct` format per
msgpack type, straight from the rules: map keys strings and sorted, every
integer in the shortest form msgpack has for it and within int64, strings as
str and bytes as bin in their shortest headers, nothing but maps, arrays
(lists and tuples), strings, bytes, booleans, nil and integers, each of
exactly its type, nested at most `max_depth` deep, at most `MAX_ITEMS`
entries in one collection. `encode` must write the same bytes for every value
the reference accepts and refuse every value it refuses. `reference_decode`
is msgpack's own decoder with the same rules applied to what it returns;
`decode` must agree with it on any bytes, hostile ones included.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import struct
from typing import Any, NamedTuple

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import MAX_DEPTH, MAX_INT, MAX_ITEMS, MIN_INT, decode, encode
from ledger.errors import EncodingError
from tests.adversarial.hostile import hostile_bytes


class Refused(Exception):
    """The reference refuses the value."""


def _sized(length: int, short: tuple[int, int] | None, formats: list[tuple[int, str, int]]) -> bytes:
    """The header of a string, bytes, array or map of `length`: the fix form below `short[1]` entries (its
    marker is `short[0]`), else the first of `formats` (marker, struct format, limit) whose limit it is under."""
    if short is not None and length < short[1]:
        return bytes([short[0] | length])
    for marker, fmt, limit in formats:
        if length < limit:
            return bytes([marker]) + struct.pack(fmt, length)
    raise Refused


def _encode_int(value: int) -> bytes:
    if not MIN_INT <= value <= MAX_INT:
        raise Refused
    if 0 <= value < 0x80:
        return struct.pack(">B", value)
    if -32 <= value < 0:
        return struct.pack(">b", value)
    if value > 0:
        formats = [(0xCC, ">B", 2**8), (0xCD, ">H", 2**16), (0xCE, ">I", 2**32), (0xCF, ">Q", 2**64)]
        marker, fmt = next((m, f) for m, f, limit in formats if value < limit)
    else:
        formats = [(0xD0, ">b", 2**7), (0xD1, ">h", 2**15), (0xD2, ">i", 2**31), (0xD3, ">q", 2**63)]
        marker, fmt = next((m, f) for m, f, limit in formats if value >= -limit)
    return bytes([marker]) + struct.pack(fmt, value)


def reference_encode(value: Any, levels: int = MAX_DEPTH) -> bytes:
    """Canonical msgpack of `value` by hand; `Refused` for anything that is not ledger data within `levels`."""
    kind = type(value)
    if value is None:
        return b"\xc0"
    if kind is bool:
        return b"\xc3" if value else b"\xc2"
    if kind is int:
        return _encode_int(value)
    if kind is str:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused from None
        return _sized(len(data), (0xA0, 32), [(0xD9, ">B", 2**8), (0xDA, ">H", 2**16), (0xDB, ">I", 2**32)]) + data
    if kind is bytes:
        return _sized(len(value), None, [(0xC4, ">B", 2**8), (0xC5, ">H", 2**16), (0xC6, ">I", 2**32)]) + value
    if kind is list or kind is tuple:
        if levels == 0 or len(value) > MAX_ITEMS:
            raise Refused
        header = _sized(len(value), (0x90, 16), [(0xDC, ">H", 2**16), (0xDD, ">I", 2**32)])
        return header + b"".join(reference_encode(item, levels - 1) for item in value)
    if kind is dict:
        if levels == 0 or len(value) > MAX_ITEMS or any(type(key) is not str for key in value):
            raise Refused
        header = _sized(len(value), (0x80, 16), [(0xDE, ">H", 2**16), (0xDF, ">I", 2**32)])
        entries = [reference_encode(key) + reference_encode(value[key], levels - 1) for key in sorted(value)]
        return header + b"".join(entries)
    raise Refused


def is_ledger_data(value: Any, levels: int = MAX_DEPTH) -> bool:
    """Whether `reference_encode` takes `value`."""
    try:
        reference_encode(value, levels)
    except Refused:
        return False
    return True


def _no_extension(code: int, data: bytes) -> Any:
    raise Refused


def reference_decode(data: bytes) -> Any:
    """msgpack's decoder, then the rules; `Refused` for bytes that are not ledger data."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_no_extension)
    except Exception:
        raise Refused from None
    if not is_ledger_data(value):
        raise Refused
    return value


class Text(str):
    """A subclass of str: it would encode as a string, but it is not one."""


class Number(int):
    """A subclass of int."""


class Point(NamedTuple):
    """A tuple subclass."""

    x: Any
    y: Any


class Level(enum.IntEnum):
    LOW = 1


class Tag(enum.Enum):
    A = "a"


INT_EDGES = [0, 1, -1, 31, 32, -32, -33, 127, 128, -128, -129, 255, 256, 2**15, -(2**15) - 1, 2**16, 2**31, -(2**31)]
INT_EDGES += [-(2**31) - 1, 2**32 - 1, 2**32, MAX_INT, MIN_INT, MAX_INT + 1, MIN_INT - 1, 2**64 - 1, 2**64]
"""Integers at every boundary of msgpack's integer forms and of int64."""

SIZE_EDGES = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]
"""Lengths at the boundaries of msgpack's string, bytes, array and map headers."""

keys = st.text(max_size=6) | st.sampled_from(["", "a", "A", "é", "\uffff", "\U00010000", "ab", "a\x00"])
ledger_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(MIN_INT, MAX_INT),
    st.sampled_from([n for n in INT_EDGES if MIN_INT <= n <= MAX_INT]),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.builds(lambda n, c: c * n, st.sampled_from(SIZE_EDGES[:9]), st.sampled_from(["x", "é", "\U0001f600"])),
    st.builds(bytes, st.sampled_from(SIZE_EDGES)),
)
ledger_values = st.recursive(
    ledger_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.lists(inner, max_size=5).map(tuple) | st.dictionaries(keys, inner, max_size=5)
    ),
    max_leaves=24,
)
"""Ledger data of every msgpack form, tuples included."""

foreign_scalars = st.one_of(
    st.floats(),
    st.sampled_from([n for n in INT_EDGES if not MIN_INT <= n <= MAX_INT]),
    st.integers(MAX_INT + 1, 2**80),
    st.integers(-(2**80), MIN_INT - 1),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.builds(bytearray, st.binary(max_size=4)),
    st.builds(lambda b: memoryview(b), st.binary(max_size=4)),
    st.builds(Text, st.text(max_size=4)),
    st.builds(Number, st.integers(-5, 5)),
    st.sampled_from([Level.LOW, Tag.A, datetime.datetime(2024, 1, 1), decimal.Decimal(1), complex(1, 2), object()]),
    st.sampled_from([msgpack.ExtType(1, b"x"), msgpack.Timestamp(1)]),
)
"""Values msgpack or msgspec would write one way or another, none of which is ledger data."""

any_scalars = ledger_scalars | foreign_scalars
hashable_scalars = st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=3) | st.floats(allow_nan=False)
foreign_keys = st.integers(-3, 3) | st.binary(max_size=3) | st.builds(Text, st.text(max_size=3)) | st.none()


def foreign_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Containers msgspec would write as a map or an array, none of which is ledger data."""
    return st.one_of(
        st.sets(hashable_scalars, max_size=3),
        st.frozensets(hashable_scalars, max_size=3),
        st.dictionaries(keys, inner, max_size=3).map(collections.OrderedDict),
        st.dictionaries(keys, inner, max_size=3).map(lambda d: collections.defaultdict(int, d)),
        st.lists(inner, max_size=3).map(collections.UserList),
        st.builds(Point, inner, inner),
        st.dictionaries(foreign_keys, inner, min_size=1, max_size=3),
    )


any_values = st.recursive(
    any_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(keys | foreign_keys, inner, max_size=3)
        | foreign_containers(inner)
    ),
    max_leaves=16,
)
"""Anything: ledger data, data with a foreign value somewhere in it, and foreign containers."""


@st.composite
def nested(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> Any:
    """A value wrapped in up to 40 levels of one-entry maps and arrays, past `MAX_DEPTH` and back."""
    value = draw(values)
    for as_map in draw(st.lists(st.booleans(), max_size=40)):
        value = {"k": value} if as_map else [value]
    return value


def packed(value: Any) -> bytes | None:
    """`value` packed as plain msgpack (keys in their order, floats and all), or None if msgpack cannot."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except Exception:
        return None


def outcome(work: Any, *args: Any) -> Any:
    """What `work(*args)` returns, or `Refused` if it refused."""
    try:
        return work(*args)
    except (Refused, EncodingError):
        return Refused


def as_decoded(value: Any) -> Any:
    """`value` as `decode` returns it: tuples become lists."""
    if type(value) is dict:
        return {key: as_decoded(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return [as_decoded(item) for item in value]
    return value


@given(ledger_values | nested(ledger_values), st.integers(1, MAX_DEPTH))
def test_encode_writes_the_reference_bytes_of_ledger_data(value: Any, max_depth: int) -> None:
    assert outcome(encode, value, max_depth) == outcome(reference_encode, value, max_depth)
    assert outcome(encode, value) == outcome(reference_encode, value)


@given(any_values | nested(any_values), st.integers(1, MAX_DEPTH))
def test_encode_refuses_exactly_what_the_reference_refuses(value: Any, max_depth: int) -> None:
    assert outcome(encode, value, max_depth) == outcome(reference_encode, value, max_depth)


@given(ledger_values, foreign_scalars | foreign_containers(ledger_values), st.integers(0, 4))
def test_one_foreign_value_anywhere_is_refused_by_both(value: Any, foreign: Any, where: int) -> None:
    spoiled = [foreign, [value, foreign], {"a": value, "b": foreign}, {"deep": [[{"x": foreign}]]}, {Text("k"): value}]
    assert outcome(encode, spoiled[where]) is Refused
    assert outcome(reference_encode, spoiled[where]) is Refused


@given(ledger_values | nested(ledger_values))
def test_decode_of_encode_gives_the_value_back(value: Any) -> None:
    if is_ledger_data(value):
        assert decode(encode(value)) == as_decoded(value)
        assert decode(encode(value), check=False) == as_decoded(value)


@given(hostile_bytes() | (any_values | nested(any_values)).map(packed).filter(bool))
def test_decode_takes_exactly_what_the_reference_decoder_takes(data: bytes) -> None:
    assert outcome(decode, data) == outcome(reference_decode, data)


@pytest.mark.parametrize("length", SIZE_EDGES)
def test_every_header_size_is_written_as_the_reference_writes_it(length: int) -> None:
    for value in ("s" * length, b"b" * length, [None] * length, (0,) * length, {f"{i:06d}": i for i in range(length)}):
        encoded = encode(value)
        assert encoded == reference_encode(value)
        assert decode(encoded) == as_decoded(value)


def test_an_input_past_the_item_bound_in_bytes_decodes_alike() -> None:
    """Bytes longer than `MAX_ITEMS` go to msgpack's decoder (the one that bounds a collection by its header):
    the same values come out and the same ones are refused."""
    value = {"blob": b"x" * MAX_ITEMS, "lines": [{"qty": 2, "sku": "s"}] * 3, "note": "é" * 10}
    assert decode(encode(value)) == value
    for spoiled in ({**value, "price": 1.5}, {**value, "big": 2**64 - 1}, {**value, "when": msgpack.Timestamp(1)}):
        data = msgpack.packb(spoiled, use_bin_type=True)
        assert len(data) > MAX_ITEMS
        with pytest.raises(EncodingError):
            decode(data)
    with pytest.raises(EncodingError):
        decode(msgpack.packb({b"key": b"x" * MAX_ITEMS}, use_bin_type=True))
    with pytest.raises(EncodingError):
        decode(msgpack.packb({"a": msgpack.ExtType(1, b"x" * MAX_ITEMS)}, use_bin_type=True))
