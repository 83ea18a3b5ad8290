"""One strict decoder for what a node loads from disk: the declared type decides, with exact keys.

Files a node reads at start or while it runs (the genesis, the API tokens, a
peer's snapshot manifest) are parsed into plain values (JSON, MessagePack),
then checked here against one declared type: `msgspec.convert(...,
strict=True)`, so a string is never taken for a number (`"3000"` is not
3000), a string never for a list (`"all"` is not the scopes `a` and `l`), and
a key the type does not declare is refused. The check happens where the file
is loaded, so a wrong type stops the load with a message naming the field
(`Expected int, got str - at $.view_timeout_ms`), never later inside the
running node.

A declared type is a `msgspec.Struct` with `forbid_unknown_fields`, or a
frozen dataclass of the ledger's own, whose fields (types and defaults) are
turned into such a struct once (`exact_struct`) so the field list is never
written twice.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, TypeVar

import msgspec

from ledger.errors import LedgerError

T = TypeVar("T")


@functools.cache
def exact_struct(declared: type) -> type[msgspec.Struct]:
    """A frozen struct with the fields of dataclass `declared` (names, types, defaults) and no other key."""
    hints = typing.get_type_hints(declared)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in dataclasses.fields(declared):
        if field.default is not dataclasses.MISSING:
            fields.append((field.name, hints[field.name], field.default))
        elif field.default_factory is not dataclasses.MISSING:
            fields.append((field.name, hints[field.name], msgspec.field(default_factory=field.default_factory)))
        else:
            fields.append((field.name, hints[field.name]))
    return msgspec.defstruct(declared.__name__, fields, forbid_unknown_fields=True, frozen=True)


def convert_strict(value: Any, declared: type[T], error: type[LedgerError], what: str) -> T:
    """`value` as an instance of `declared` (a forbid-unknown-fields struct, or a dataclass taken through
    `exact_struct`), every field of its declared type and no undeclared key; else `error` naming `what`."""
    try:
        if dataclasses.is_dataclass(declared):
            struct = msgspec.convert(value, exact_struct(declared), strict=True)
            return declared(**msgspec.structs.asdict(struct))
        return msgspec.convert(value, declared, strict=True)
    except msgspec.ValidationError as exc:
        raise error(f"{what}: {exc}") from exc
