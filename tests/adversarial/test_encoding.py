"""The bounded decoder: whatever the bytes, `decode` returns ledger data or raises `EncodingError`, and
`encode` refuses exactly what `decode` would refuse, so what one stage writes the next can read."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import MAX_DEPTH, MAX_ITEMS, decode, encode
from ledger.errors import EncodingError
from tests.adversarial.hostile import DEEP_LEVELS, deep_array, deep_map, deep_value, hostile_bytes


@given(hostile_bytes())
def test_decode_answers_only_ledger_data_or_encoding_error(data: bytes) -> None:
    try:
        value = decode(data)
    except EncodingError:
        return
    assert decode(encode(value)) == value


@given(hostile_bytes())
def test_decode_of_own_bytes_never_raises_anything_but_encoding_error(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        decode(data, check=False)


PAST_THE_BOUND = [levels for levels in DEEP_LEVELS if levels > MAX_DEPTH]


@pytest.mark.parametrize("levels", PAST_THE_BOUND)
@pytest.mark.parametrize("make", [deep_array, deep_map])
def test_deep_nesting_is_refused_without_running_out_of_stack(levels: int, make) -> None:
    with pytest.raises(EncodingError):
        decode(make(levels))


DEEP_DECODE = """
import threading
from ledger.encoding import decode
from ledger.errors import EncodingError

def run():
    for levels in (900, 5_000, 100_000):
        for data in (b"\\x91" * levels + b"\\xc0", b"\\x81\\xa1a" * levels + b"\\xc0"):
            try:
                decode(data)
            except EncodingError:
                continue
            raise SystemExit(f"{levels} levels decoded")
    print("refused")

thread = threading.Thread(target=run)
thread.start()
thread.join()
"""
"""Decodes, in a thread, input nested far past the bound; prints `refused` if every one is refused, or crashes."""


@pytest.mark.parametrize(
    "setup",
    [
        "import threading; threading.stack_size(1 << 20)",  # a thread of 1 MiB, at the default recursion limit
        "import sys; sys.setrecursionlimit(1_000_000)",  # a limit that would let a C decoder recurse 100,000 deep
    ],
)
def test_deep_input_cannot_overflow_the_stack(setup: str) -> None:
    """In a process of its own, since an overflow would end it."""
    done = subprocess.run([sys.executable, "-c", setup + DEEP_DECODE], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "refused"), done.stderr[-2000:]


@pytest.mark.parametrize("levels", PAST_THE_BOUND)
def test_encode_refuses_deep_values_without_running_out_of_stack(levels: int) -> None:
    with pytest.raises(EncodingError, match="nested deeper"):
        encode(deep_value(levels))


def test_the_deepest_value_allowed_round_trips_and_one_more_level_is_refused_both_ways() -> None:
    deepest = deep_array(MAX_DEPTH)
    assert encode(decode(deepest)) == deepest
    with pytest.raises(EncodingError):
        decode(deep_array(MAX_DEPTH + 1))
    value: object = None
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(EncodingError):
        encode(value)


def test_a_tighter_depth_bound_is_honoured() -> None:
    encode([[[0]]], max_depth=3)
    with pytest.raises(EncodingError, match="nested deeper than 3"):
        encode([[[[0]]]], max_depth=3)


@pytest.mark.parametrize("header", [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff"])
def test_huge_declared_lengths_are_refused_before_anything_is_allocated(header: bytes) -> None:
    with pytest.raises(EncodingError):
        decode(header)


def test_a_collection_over_the_item_bound_is_refused_both_ways() -> None:
    packer = msgpack.Packer()
    with pytest.raises(EncodingError):
        decode(packer.pack_array_header(MAX_ITEMS + 1) + b"\xc0" * (MAX_ITEMS + 1))
    with pytest.raises(EncodingError, match="entries"):
        encode([None] * (MAX_ITEMS + 1))


@given(st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3))
def test_lone_surrogates_are_refused_by_encode(text: str) -> None:
    with pytest.raises(EncodingError, match="unicode"):
        encode({"name": text})
    with pytest.raises(EncodingError, match="unicode"):
        encode({text: 1})


@pytest.mark.parametrize("data", [b"\xa1\xff", b"\xa3\xed\xa0\x80", b"\x81\xa2\xed\xa0\x01"])
def test_invalid_utf8_is_refused_by_decode(data: bytes) -> None:
    with pytest.raises(EncodingError):
        decode(data)


@pytest.mark.parametrize(
    "value", [{b"key": 1}, [2**64 - 1], [1.5], msgpack.ExtType(1, b""), msgpack.Timestamp(1), {"a": [{"b": 2.0}]}]
)
def test_values_outside_ledger_data_are_refused_by_decode(value: object) -> None:
    with pytest.raises(EncodingError):
        decode(msgpack.packb(value, use_bin_type=True))


@given(st.integers(min_value=1, max_value=200), st.data())
def test_every_truncation_of_an_encoding_is_refused(cut: int, data: st.DataObject) -> None:
    value = {"lines": [{"qty": 2, "sku": "sku-1"}], "note": "x" * 40, "sig": b"\x00" * 64}
    encoded = encode(value)
    end = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(EncodingError):
        decode(encoded[:end])
