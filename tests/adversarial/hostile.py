"""Hostile inputs for every decoder: what a client, a peer or a damaged disk can hand a node.

`hostile_bytes()` draws msgpack that is deep (past any bound, far past the
Python stack), holds every msgpack type (floats, extension types,
timestamps, bytes map keys, integers beyond int64, invalid UTF-8), is cut
short or has bytes flipped, or is plain junk. `wrap(shape, value)` puts a
hostile encoding where a well-formed message would hold a field, so the
shape checks around it pass and the value reaches the deeper decoders.
"""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import strategies as st

DEEP_LEVELS = (17, 33, 600, 1_100, 100_000)
"""Nesting depths that matter: past a tx's bound, past the decoder's, past Python's recursion limit, past
msgpack's own stack."""


def deep_array(levels: int) -> bytes:
    """`levels` nested one-element arrays around nil."""
    return b"\x91" * levels + b"\xc0"


def deep_map(levels: int) -> bytes:
    """`levels` nested one-entry maps `{"a": ...}` around nil."""
    return b"\x81\xa1a" * levels + b"\xc0"


def deep_value(levels: int) -> Any:
    """A Python value nested `levels` deep, built without recursion."""
    value: Any = 0
    for _ in range(levels):
        value = {"a": [value]}
    return value


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1))
)
_keys = st.text(max_size=6) | st.binary(max_size=4) | st.integers(-5, 5)
any_msgpack_value = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)
"""Every kind of value msgpack can carry, ledger data or not."""


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=False)


def _deep(levels: int, as_map: bool) -> bytes:
    return deep_map(levels) if as_map else deep_array(levels)


_invalid_utf8 = st.sampled_from([b"\xa1\xff", b"\xa3\xed\xa0\x80", b"\xa2\xc3\x28", b"\x81\xa2\xed\xa0\x01"])
_huge_headers = st.sampled_from(
    [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff"]
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(_pack(draw(any_msgpack_value)))
    if data and draw(st.booleans()):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def hostile_bytes() -> st.SearchStrategy[bytes]:
    """Bytes that no decoder may answer with anything but its typed error (or a value it accepts)."""
    return st.one_of(
        any_msgpack_value.map(_pack),
        _mutated(),
        st.builds(_deep, st.sampled_from(DEEP_LEVELS), st.booleans()),
        _invalid_utf8,
        _huge_headers,
        st.binary(max_size=64),
    )


def hostile_values() -> st.SearchStrategy[bytes]:
    """Whole encoded values to put in a field: any msgpack value, or one nested past a bound."""
    return any_msgpack_value.map(_pack) | st.builds(_deep, st.sampled_from(DEEP_LEVELS), st.booleans())


def wrap(shape: dict[str, Any], field: str, raw: bytes) -> bytes:
    """`shape` packed as plain msgpack (not through the ledger's encoder), with the encoded value `raw`
    spliced in as `field`."""
    rest = {key: value for key, value in shape.items() if key != field}
    parts = [msgpack.Packer().pack_map_header(len(rest) + 1)]
    parts += [_pack(key) + _pack(value) for key, value in rest.items()]
    return b"".join([*parts, _pack(field), raw])


def in_map(key: str, raw: bytes) -> bytes:
    """The encoding of `{key: <raw>}`."""
    return b"\x81" + _pack(key) + raw
