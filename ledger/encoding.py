"""Canonical encoding: one function encodes, one decodes, and one hashes.

Everything that is hashed or signed goes through `encode`, which produces
msgpack with map keys sorted, strings as str, bytes as bin, and integers only.
A float anywhere is an `EncodingError`: money is integer minor units and
quantities are integer units, so two nodes never disagree on a rounding.
Tuples and lists both encode as msgpack arrays; `decode` returns lists.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack

from ledger.errors import EncodingError

MAX_INT = 2**63 - 1
"""Largest integer allowed in ledger data (msgpack int64)."""

MIN_INT = -(2**63)
"""Smallest integer allowed in ledger data."""

_FLOAT32 = b"\xca"
_FLOAT64 = b"\xcb"
"""The msgpack markers of floats: bytes with neither hold no float, and need no walk."""


def _canonical(value: Any) -> Any:
    """Return `value` with every map's keys sorted; raise a bare `EncodingError` for non-ledger data.

    The hot path builds no error paths; `_describe` finds where the problem is once one is known.
    """
    kind = type(value)
    if kind is dict:
        return _canonical_map(value)
    if kind is list or kind is tuple:
        return _canonical_list(value)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int and MIN_INT <= value <= MAX_INT:
        return value
    raise EncodingError


def _canonical_map(value: dict[Any, Any]) -> dict[str, Any]:
    """`_canonical` of a map, with the leaves handled in line (most values are leaves)."""
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
            out[key] = _canonical_map(item)
        elif kind is list or kind is tuple:
            out[key] = _canonical_list(item)
        else:
            raise EncodingError
    return out


def _canonical_list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    """`_canonical` of an array, with the leaves handled in line."""
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
            out.append(_canonical_map(item))
        elif kind is list or kind is tuple:
            out.append(_canonical_list(item))
        else:
            raise EncodingError
    return out


def _describe(value: Any, path: str) -> str | None:
    """What is wrong with `value` and where (slow; only after `_canonical` refused it)."""
    kind = type(value)
    if kind is float:
        return f"float at {path}: ledger data holds integers only"
    if kind is int and not MIN_INT <= value <= MAX_INT:
        return f"integer out of int64 range at {path}"
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"map key {key!r} at {path} is not a string"
            found = _describe(item, f"{path}.{key}")
            if found:
                return found
        return None
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            found = _describe(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if kind in (str, bytes, int, bool) or value is None:
        return None
    return f"cannot encode {kind.__name__} at {path}"


def encode(value: Any) -> bytes:
    """Encode `value` canonically (sorted keys, no floats)."""
    try:
        canonical = _canonical(value)
    except (EncodingError, TypeError):  # TypeError: map keys of types that do not sort together
        raise EncodingError(_describe(value, "$") or "value is not ledger data") from None
    return msgpack.packb(canonical, use_bin_type=True)


def _ext_hook(code: int, data: bytes) -> Any:
    raise EncodingError(f"msgpack extension type {code} is not ledger data")


def decode(data: bytes, check: bool = True) -> Any:
    """Decode canonical bytes; refuses floats, extension types and junk.

    `check=False` skips the walk that refuses floats, for bytes this node wrote itself through `encode`
    (its own world state), which cannot hold any.
    """
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_ext_hook)
    except EncodingError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise EncodingError(f"not valid msgpack: {exc}") from exc
    if check and (_FLOAT32 in data or _FLOAT64 in data) and _has_float(value):
        raise EncodingError(_describe(value, "$") or "float in data")
    return value


def _has_float(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return any(_has_float(item) for item in value.values())
    if kind is list:
        return any(_has_float(item) for item in value)
    return kind is float


def sha256(data: bytes) -> bytes:
    """The ledger's hash function."""
    return hashlib.sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """sha256 of the canonical encoding of `value`."""
    return sha256(encode(value))
