"""Canonical encoding: one function encodes, one decodes, and one hashes.

Everything that is hashed or signed goes through `encode`, which produces
msgpack with map keys sorted, strings as str, bytes as bin, and integers only.
A float anywhere is an `EncodingError`: money is integer minor units and
quantities are integer units, so two nodes never disagree on a rounding.
Tuples and lists both encode as msgpack arrays; `decode` returns lists.

Both directions run in C through msgspec: its MessagePack encoder in sorted
order writes these canonical bytes (each value in its shortest form, keys in
code point order), and its decoder reads them. What is ledger data is decided
in one place, `_check`, for both directions: maps with string keys, arrays,
strings, bytes, booleans, nil and int64 integers, each of exactly its type,
nested at most `MAX_DEPTH` deep with at most `MAX_ITEMS` entries in one map
or array. msgspec alone would take more (floats, sets, subclasses of dict and
list, bytearray, enums, integers up to 2**64 - 1, ...), so `encode` checks
before it encodes; the check looks at each value once and builds nothing, and
it is most of what encoding costs.

`decode` is the one decoder of untrusted bytes (from a client, a peer, a file
or the disk). It is bounded: at most `MAX_BYTES` in, at most `MAX_ITEMS`
entries in one map or array, maps and arrays nested at most `MAX_DEPTH`
deep, and no input can overflow the stack. msgspec's decoder recurses in C
once per level until the interpreter's recursion limit ends it in a
`RecursionError` (caught), at about 300 bytes of stack a level: 0.3 MiB at
the default limit of 1,000, and never more than `_MAX_C_RECURSION` levels,
as a process whose limit is set higher decodes with msgpack, whose stack is
fixed. msgspec allocates no more entries than the input has bytes, so an
input longer than `MAX_ITEMS` bytes, the only kind that can hold a
collection past the bound, is read by msgpack's decoder too, which refuses
such a collection from its header. The check recurses at most `MAX_DEPTH` +
1 levels. Whatever is wrong with the bytes, the only error it raises is
`EncodingError`. `encode` refuses every value that `decode` would refuse
(the check is the same), so nothing is stored or signed that a later stage
could not decode again.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import msgpack
import msgspec

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

_MAX_C_RECURSION = 5_000
"""Highest recursion limit under which `decode` lets msgspec's decoder recurse (about 1.5 MiB of stack)."""

_SCALARS = frozenset({str, bytes, bool, type(None)})
"""Exact types of the scalars that are ledger data whatever their value (an int is also checked for its range)."""


def _check(value: Any, depth: int) -> None:
    """Raise a bare `EncodingError` unless `value` is ledger data (see the module docstring).

    `depth` is the nesting level of `value`'s own entries. The hot path builds no error paths; `_describe`
    finds where the problem is once one is known. Strings are not looked into: msgspec refuses a lone
    surrogate when it encodes, and never decodes one.
    """
    kind = type(value)
    if kind is dict:
        _check_map(value, depth)
    elif kind is list or kind is tuple:
        _check_array(value, depth)
    elif kind is int:
        if not MIN_INT <= value <= MAX_INT:
            raise EncodingError
    elif kind not in _SCALARS:
        raise EncodingError


def _check_map(value: dict[Any, Any], depth: int) -> None:
    """`_check` of a map, with the leaves handled in line (most values are leaves)."""
    if depth > MAX_DEPTH or len(value) > MAX_ITEMS:
        raise EncodingError
    for key, item in value.items():
        if type(key) is not str:
            raise EncodingError
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise EncodingError
        elif kind is dict:
            _check_map(item, depth + 1)
        elif kind is list or kind is tuple:
            _check_array(item, depth + 1)
        else:
            raise EncodingError


def _check_array(value: list[Any] | tuple[Any, ...], depth: int) -> None:
    """`_check` of an array, with the leaves handled in line."""
    if depth > MAX_DEPTH or len(value) > MAX_ITEMS:
        raise EncodingError
    for item in value:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise EncodingError
        elif kind is dict:
            _check_map(item, depth + 1)
        elif kind is list or kind is tuple:
            _check_array(item, depth + 1)
        else:
            raise EncodingError


def _describe(value: Any, path: str, depth: int, max_depth: int) -> str | None:
    """What is wrong with `value` (nested `depth` levels down) and where (slow; only after `_check` refused it).

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
    return f"{kind.__name__} at {path} is not ledger data"


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_ENCODER = msgspec.msgpack.Encoder(order="sorted")
"""Writes ledger data canonically: map keys sorted, every value in its shortest form, bytes as bin."""


def encode(value: Any, max_depth: int = MAX_DEPTH) -> bytes:
    """Encode `value` canonically (sorted keys, no floats), or raise `EncodingError` for what `decode` would refuse.

    `max_depth` bounds the nesting tighter than `MAX_DEPTH`, for a value that other values will carry
    (a tx inside a block inside a consensus message must still decode as a whole).
    """
    try:
        # counting starts as if `value` sat MAX_DEPTH - max_depth levels down already
        _check(value, MAX_DEPTH - max_depth + 1)
        data = _ENCODER.encode(value)
    except (EncodingError, ValueError):
        # ValueError: a lone surrogate in a string, the only thing the check leaves to msgspec
        raise EncodingError(_describe(value, "$", 0, max_depth) or "value is not ledger data") from None
    if len(data) > MAX_BYTES:
        raise EncodingError(f"encoding of {len(data)} bytes is larger than {MAX_BYTES}")
    return data


def encode_unchecked(value: Any) -> bytes:
    """Encode canonically, without the check of `encode`: only for values the node builds itself out of ledger
    data it has already decoded or checked (the change feed's events), where the check would find nothing and
    cost more than the encoding."""
    return _ENCODER.encode(value)


def encode_spliced(value: dict[str, Any], spliced: Mapping[str, bytes | Sequence[bytes]]) -> bytes:
    """`encode` of the map `value` with the entries of `spliced` added, each of those already encoded: a value's
    canonical bytes, or a list of them (an array), spliced in as they are rather than encoded again.

    What is spliced is not looked into: it must be canonical bytes made by `encode` (or by this function) with
    a depth bound that keeps it within `MAX_DEPTH` where it lands, as for a tx inside a block.
    """
    entries: dict[str, Any] = dict(value)
    for key, part in spliced.items():
        if isinstance(part, bytes):
            entries[key] = msgspec.Raw(part)
        elif len(part) > MAX_ITEMS:
            raise EncodingError(f"{key} has {len(part)} entries, more than {MAX_ITEMS}")
        else:
            entries[key] = [msgspec.Raw(item) for item in part]
    try:
        _check_map(value, 1)
    except EncodingError:
        raise EncodingError(_describe(value, "$", 0, MAX_DEPTH) or "value is not ledger data") from None
    try:
        data = _ENCODER.encode(entries)
    except ValueError:
        raise EncodingError(_describe(value, "$", 0, MAX_DEPTH) or "value is not ledger data") from None
    if len(data) > MAX_BYTES:
        raise EncodingError(f"encoding of {len(data)} bytes is larger than {MAX_BYTES}")
    return data


def _refuse_extension(code: int, data: Any) -> NoReturn:
    raise EncodingError(f"msgpack extension type {code} is not ledger data")


_DECODER = msgspec.msgpack.Decoder(ext_hook=_refuse_extension)
"""Reads any msgpack; an extension type is refused as it is met (a timestamp comes out as a datetime, which
`_check` refuses)."""


def decode(data: bytes, check: bool = True) -> Any:
    """Decode bytes within the bounds of this module; raise `EncodingError` for anything that is not ledger data.

    `check=False` skips the walk that refuses floats, 64-bit unsigned integers, non-string map keys and deep
    nesting, for bytes this node wrote itself through `encode` (its own world state), which cannot hold any.
    """
    if len(data) > MAX_BYTES:
        raise EncodingError(f"{len(data)} bytes is more than the {MAX_BYTES} a value may take")
    try:
        if len(data) <= MAX_ITEMS and sys.getrecursionlimit() <= _MAX_C_RECURSION:
            value = _DECODER.decode(data)
        else:
            value = msgpack.unpackb(
                data,
                raw=False,
                strict_map_key=True,
                ext_hook=_refuse_extension,
                max_str_len=MAX_BYTES,
                max_bin_len=MAX_BYTES,
                max_array_len=MAX_ITEMS,
                max_map_len=MAX_ITEMS,
            )
    except EncodingError:
        raise
    except Exception as exc:  # msgspec and msgpack raise several unrelated types, RecursionError among them
        raise EncodingError(f"not valid msgpack: {type(exc).__name__}: {exc}") from None
    if check:
        try:
            _check(value, 1)
        except EncodingError:
            raise EncodingError(_describe(value, "$", 0, MAX_DEPTH) or "value is not ledger data") from None
    return value


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
