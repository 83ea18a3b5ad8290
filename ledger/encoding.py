"""Canonical encoding: one function encodes, one decodes, and one hashes.

Everything that is hashed or signed goes through `encode`, which produces
msgpack with map keys sorted, strings as str, bytes as bin, and integers only.
A float anywhere is an `EncodingError`: money is integer minor units and
quantities are integer units, so two nodes never disagree on a rounding.
Tuples and lists both encode as msgpack arrays; `decode` returns lists.

`decode` is the one decoder of untrusted bytes (from a client, a peer, a file
or the disk). It is bounded: at most `MAX_BYTES` in, at most `MAX_ITEMS`
entries in one map or array, maps and arrays nested at most `MAX_DEPTH`
deep, and it never recurses in Python, so no input can overflow the stack.
Whatever is wrong with the bytes, the only error it raises is
`EncodingError`. `encode` refuses every value that `decode` would refuse, so
nothing is stored or signed that a later stage could not decode again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgpack

from ledger.errors import EncodingError, LedgerError

MAX_INT = 2**63 - 1
"""Largest integer allowed in ledger data (msgpack int64)."""

MIN_INT = -(2**63)
"""Smallest integer allowed in ledger data."""

MAX_DEPTH = 32
"""Deepest nesting of maps and arrays in one value (a scalar is depth 0, `[1]` depth 1)."""

MAX_ITEMS = 1 << 20
"""Most entries in one map or array."""

MAX_BYTES = 128 * 1024 * 1024
"""Largest encoding, and so also the longest string or bytes value in one."""

_ODD_SCALAR_MARKERS = (b"\xca", b"\xcb", b"\xcf", b"\xd6", b"\xd7", b"\xc7")
"""The msgpack markers of floats, of unsigned 64-bit integers (the only ones above `MAX_INT`) and of
timestamps (the only extension type msgpack decodes without `_ext_hook`): bytes with none of them hold
no scalar that is not ledger data, and the walk need not look at their scalars."""


def _canonical(value: Any, depth: int) -> Any:
    """Return `value` with every map's keys sorted; raise a bare `EncodingError` for non-ledger data.

    `depth` is the nesting level of `value`'s own entries. The hot path builds no error paths; `_describe`
    finds where the problem is once one is known.
    """
    kind = type(value)
    if kind is dict:
        return _canonical_map(value, depth)
    if kind is list or kind is tuple:
        return _canonical_list(value, depth)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int and MIN_INT <= value <= MAX_INT:
        return value
    raise EncodingError


def _canonical_map(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    """`_canonical` of a map, with the leaves handled in line (most values are leaves)."""
    if depth > MAX_DEPTH or len(value) > MAX_ITEMS:
        raise EncodingError
    out = {}
    for key in sorted(value):
        if type(key) is not str:
            raise EncodingError
        item = value[key]
        kind = type(item)
        if kind is str or kind is bytes or kind is bool or item is None:
            out[key] = item
        elif kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise EncodingError
            out[key] = item
        elif kind is dict:
            out[key] = _canonical_map(item, depth + 1)
        elif kind is list or kind is tuple:
            out[key] = _canonical_list(item, depth + 1)
        else:
            raise EncodingError
    return out


def _canonical_list(value: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
    """`_canonical` of an array, with the leaves handled in line."""
    if depth > MAX_DEPTH or len(value) > MAX_ITEMS:
        raise EncodingError
    out = []
    for item in value:
        kind = type(item)
        if kind is str or kind is bytes or kind is bool or item is None:
            out.append(item)
        elif kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise EncodingError
            out.append(item)
        elif kind is dict:
            out.append(_canonical_map(item, depth + 1))
        elif kind is list or kind is tuple:
            out.append(_canonical_list(item, depth + 1))
        else:
            raise EncodingError
    return out


def _describe(value: Any, path: str, depth: int, max_depth: int) -> str | None:
    """What is wrong with `value` (nested `depth` levels down) and where (slow; only after `_canonical` refused it).

    Recursion stops at `max_depth`, where the nesting itself is what is wrong.
    """
    kind = type(value)
    if kind is float:
        return f"float at {path}: ledger data holds integers only"
    if kind is int and not MIN_INT <= value <= MAX_INT:
        return f"integer out of int64 range at {path}"
    if kind is str:
        return None if _is_utf8(value) else f"string at {path} is not valid unicode (a lone surrogate?)"
    if kind in (dict, list, tuple):
        if depth >= max_depth:
            return f"{path} is nested deeper than {max_depth} levels"
        if len(value) > MAX_ITEMS:
            return f"{path} has {len(value)} entries, more than {MAX_ITEMS}"
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"map key {key!r} at {path} is not a string"
            found = _describe(key, f"{path} key", depth, max_depth) or _describe(
                item, f"{path}.{key}", depth + 1, max_depth
            )
            if found:
                return found
        return None
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            found = _describe(item, f"{path}[{i}]", depth + 1, max_depth)
            if found:
                return found
        return None
    if kind in (bytes, int, bool) or value is None:
        return None
    return f"cannot encode {kind.__name__} at {path}"


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def encode(value: Any, max_depth: int = MAX_DEPTH) -> bytes:
    """Encode `value` canonically (sorted keys, no floats), or raise `EncodingError` for what `decode` would refuse.

    `max_depth` bounds the nesting tighter than `MAX_DEPTH`, for a value that other values will carry
    (a tx inside a block inside a consensus message must still decode as a whole).
    """
    try:
        # counting starts as if `value` sat MAX_DEPTH - max_depth levels down already
        data: bytes = msgpack.packb(_canonical(value, MAX_DEPTH - max_depth + 1), use_bin_type=True)
    except (EncodingError, TypeError, ValueError):
        # TypeError: map keys of types that do not sort together; ValueError: a lone surrogate in a string
        raise EncodingError(_describe(value, "$", 0, max_depth) or "value is not ledger data") from None
    if len(data) > MAX_BYTES:
        raise EncodingError(f"encoding of {len(data)} bytes is larger than {MAX_BYTES}")
    return data


def _ext_hook(code: int, data: bytes) -> Any:
    raise EncodingError(f"msgpack extension type {code} is not ledger data")


def decode(data: bytes, check: bool = True) -> Any:
    """Decode bytes within the bounds of this module; raise `EncodingError` for anything that is not ledger data.

    `check=False` skips the walk that refuses floats, 64-bit unsigned integers, bytes map keys and deep
    nesting, for bytes this node wrote itself through `encode` (its own world state), which cannot hold any.
    """
    if len(data) > MAX_BYTES:
        raise EncodingError(f"{len(data)} bytes is more than the {MAX_BYTES} a value may take")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            ext_hook=_ext_hook,
            max_str_len=MAX_BYTES,
            max_bin_len=MAX_BYTES,
            max_array_len=MAX_ITEMS,
            max_map_len=MAX_ITEMS,
        )
    except EncodingError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise EncodingError(f"not valid msgpack: {type(exc).__name__}: {exc}") from None
    if check:
        verify_decoded(value, any(marker in data for marker in _ODD_SCALAR_MARKERS))
    return value


def verify_decoded(value: Any, scalars: bool = True) -> None:
    """Raise `EncodingError` unless the decoded `value` nests at most `MAX_DEPTH` deep with string map keys and,
    when `scalars`, holds no scalar but strings, bytes, booleans, nil and int64 integers.

    One pass, level by level, without recursion: the walk itself cannot run out of stack.
    """
    level = [value]
    depth = 0
    while level:
        inner: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                if depth >= MAX_DEPTH:
                    raise EncodingError(f"value is nested deeper than {MAX_DEPTH} levels")
                for key in item:
                    if type(key) is not str:
                        raise EncodingError(f"map key {key!r} is not a string")
                inner.extend(item.values())
            elif kind is list:
                if depth >= MAX_DEPTH:
                    raise EncodingError(f"value is nested deeper than {MAX_DEPTH} levels")
                inner.extend(item)
            elif scalars and kind is not str and kind is not bytes and kind is not bool and item is not None:
                if kind is not int:
                    raise EncodingError(f"{kind.__name__} {item!r} is not ledger data (integers only, no floats)")
                if not MIN_INT <= item <= MAX_INT:
                    raise EncodingError(f"integer {item} is out of int64 range")
        level = inner
        depth += 1


def verify_shape(wire: Any, fields: Mapping[str, type], error: type[LedgerError], what: str) -> dict[str, Any]:
    """Raise `error` unless the decoded `wire` is a map of exactly `fields`, each of exactly its type
    (no coercion: a bool is not an int); return it as a map."""
    if type(wire) is not dict:
        raise error(f"{what} must be a map")
    if wire.keys() != fields.keys():
        missing, extra = sorted(fields.keys() - wire.keys()), sorted(wire.keys() - fields.keys())
        raise error(f"{what} fields: missing {missing}, unexpected {extra}")
    for name, kind in fields.items():
        if type(wire[name]) is not kind:
            raise error(f"{what} field {name!r} must be {kind.__name__}")
    return wire


def sha256(data: bytes) -> bytes:
    """The ledger's hash function."""
    return hashlib.sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """sha256 of the canonical encoding of `value`."""
    return sha256(encode(value))
