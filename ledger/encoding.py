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


def _canonical(value: Any, path: str) -> Any:
    """Return `value` with every map's keys sorted, refusing non-ledger types."""
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if kind is int:
        if not MIN_INT <= value <= MAX_INT:
            raise EncodingError(f"integer out of int64 range at {path}")
        return value
    if kind is str or kind is bytes:
        return value
    if kind is dict:
        out = {}
        for key in sorted(value, key=_key_order(path)):
            out[key] = _canonical(value[key], f"{path}.{key}")
        return out
    if kind is list or kind is tuple:
        return [_canonical(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind is float:
        raise EncodingError(f"float at {path}: ledger data holds integers only")
    if isinstance(value, int) and not isinstance(value, bool):
        return _canonical(int(value), path)
    raise EncodingError(f"cannot encode {kind.__name__} at {path}")


def _key_order(path: str) -> Any:
    def key(k: Any) -> Any:
        if type(k) is not str:
            raise EncodingError(f"map key {k!r} at {path} is not a string")
        return k

    return key


def encode(value: Any) -> bytes:
    """Encode `value` canonically (sorted keys, no floats)."""
    return msgpack.packb(_canonical(value, "$"), use_bin_type=True)


def _ext_hook(code: int, data: bytes) -> Any:
    raise EncodingError(f"msgpack extension type {code} is not ledger data")


def decode(data: bytes) -> Any:
    """Decode canonical bytes; refuses floats, extension types and junk."""
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, ext_hook=_ext_hook
        )
    except EncodingError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise EncodingError(f"not valid msgpack: {exc}") from exc
    _refuse_floats(value, "$")
    return value


def _refuse_floats(value: Any, path: str) -> None:
    kind = type(value)
    if kind is float:
        raise EncodingError(f"float at {path}: ledger data holds integers only")
    if kind is dict:
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif kind is list:
        for i, item in enumerate(value):
            _refuse_floats(item, f"{path}[{i}]")


def sha256(data: bytes) -> bytes:
    """The ledger's hash function."""
    return hashlib.sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """sha256 of the canonical encoding of `value`."""
    return sha256(encode(value))
