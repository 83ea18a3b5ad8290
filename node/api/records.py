"""Response models of the stored records, derived from their declared types (`contracts.records`).

A record is declared once, as a `TypedDict` whose statuses are `Literal`s;
`derive_model` turns it into the Pydantic model its JSON form has at the
API, so the OpenAPI shows each status as an enum of exactly the values the
rules may store, and every line, event and fulfilment as a typed object.
The JSON form differs from the stored one in one way only: bytes (tx ids,
hashes) are lowercase hex (`contracts.queries.to_json`). A key that is a
Python keyword (`from`) keeps its name on the wire. Fields that a newer rule
adds to a stored record before its type declares them pass through.
"""

from __future__ import annotations

import keyword
import types
import typing
from functools import cache
from typing import Any, Literal, NotRequired, Union

from pydantic import BaseModel, ConfigDict, Field, create_model


class Record(BaseModel):
    """A ledger record as JSON: the declared fields are checked; fields added by newer rules pass through."""

    model_config = ConfigDict(extra="allow", serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)


def to_wire_type(hint: Any) -> Any:
    """The type of a record field's JSON form: bytes as hex text, nested records as their derived models."""
    if hint is bytes:
        return str
    if typing.is_typeddict(hint):
        return derive_model(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal or not args:
        return hint
    converted = tuple(to_wire_type(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[converted]  # noqa: UP007 - built from a tuple of types
    if origin is list:
        return list[converted[0]]  # type: ignore[valid-type]
    if origin is dict:
        return dict[converted[0], converted[1]]  # type: ignore[valid-type]
    return hint


@cache
def derive_model(record: Any, name: str | None = None, **replaced: Any) -> type[Record]:
    """The response model of the `TypedDict` `record` (named `name`, else as the record): one field per key,
    required unless the record marks it `NotRequired` (read from the annotations: postponed evaluation leaves
    that mark out of the `TypedDict`'s own required keys), with the types of `replaced` instead of the declared
    ones where the API shows a key otherwise (an order's fulfilments in full)."""
    hints = typing.get_type_hints(record)
    marked = typing.get_type_hints(record, include_extras=True)
    attributes: dict[str, Any] = {}
    for key, hint in hints.items():
        annotation = replaced[key] if key in replaced else to_wire_type(hint)
        required = typing.get_origin(marked[key]) is not NotRequired
        info = Field(default=... if required else None, alias=key if keyword.iskeyword(key) else None)
        attribute = f"{key}_" if keyword.iskeyword(key) else key
        attributes[attribute] = (annotation if required else annotation | None, info)
    model: type[Record] = create_model(name or record.__name__, __base__=Record, **attributes)
    model.__doc__ = record.__doc__
    return model
