"""Tx payloads: one declared spec per tx kind, checked in one pass before a rule reads anything.

Each contract module declares `PAYLOADS`, tx kind -> `Field` of type `map`,
next to its `ROLES`; a rule's first step is `read_payload(spec, tx.payload)`,
which refuses a payload that does not fit with code `bad_payload` and
otherwise returns a new map holding every declared field: the value sent, or
the field's default (None when it has none). So a rule reads only declared
fields, each of the declared type and within its bounds, and a field that is
absent or null reads the same.

What a payload may hold:

- every field it declares and nothing else (an unknown field is refused);
- ids: short strings of letters, digits, `.`, `_` and `-`, so they are safe
  inside state keys; text: a string of bounded length; integers within
  bounds (a bool is not an integer); booleans; one of a fixed set of
  strings; sha256 digests in lowercase hex; byte strings in lowercase hex
  of bounded length (ciphertext, keys: `hexbytes`);
- maps of declared fields, and lists of such maps of bounded length;
- `any`: any ledger value, checked by the rule itself (governance params).

Configuration values (`contracts.settings`) are declared with the same
fields and checked by `read_value`; they may also be tables (a map from
short keys, such as tax classes or regions, to values of one spec) and
arrays (a list of values of one spec), each of bounded length.

What depends on the state or on other fields (a discount within its line's
amount, a line index within the order, a known SKU) the rules still check.
`describe` gives a spec as plain data (str, int, bool, None, lists and maps):
the transaction reference and API schemas are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from contracts.errors import Rejected

MAX_ID_LENGTH = 64
"""Longest id accepted (SKU, location, order, lot, ...)."""

MAX_TEXT_LENGTH = 256
"""Longest free text accepted (reasons, documents, carrier names)."""

MAX_QTY = 1_000_000
"""Largest quantity in one line or movement."""

MAX_AMOUNT = 10**12
"""Largest money amount in minor units."""

MAX_ITEMS = 200
"""Most items in a list field unless its spec says otherwise."""

ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
"""The characters of an id."""

HEX_DIGITS = "0123456789abcdef"
"""The characters of a digest in lowercase hex."""

FieldType = Literal["id", "text", "int", "bool", "choice", "hash", "hex", "list", "map", "table", "array", "any"]
"""What a field holds: see the module docstring."""


@dataclass(frozen=True, kw_only=True)
class Field:
    """One declared payload field (or a whole payload: a `map` named `payload`)."""

    name: str
    type: FieldType
    required: bool = True
    """Must be present and not null; an optional field that is absent or null reads as `default`."""
    default: Any = None
    """What an absent optional field reads as (None: absent, the rule decides)."""
    low: int = 0
    """Least value (int), length (text), bytes (hex) or number of items (list, table, array)."""
    high: int = 0
    """Greatest value (int), length (text), bytes (hex) or number of items (list, table, array)."""
    choices: tuple[str, ...] = ()
    """The values a `choice` may take."""
    fields: tuple[Field, ...] = ()
    """The fields of a `map`, or of each item of a `list`."""
    item: Field | None = None
    """The spec of each value of a `table`, or of each item of an `array`."""
    doc: str = ""
    """What the field means, in a few words (for the reference)."""


def bad(message: str) -> Rejected:
    return Rejected("bad_payload", message)


def is_id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and not value.strip(ID_CHARS)


# declaring fields


def ident(name: str, *, default: str | None = None, required: bool = True, doc: str = "") -> Field:
    return Field(name=name, type="id", required=required and default is None, default=default, doc=doc)


def text(
    name: str,
    *,
    default: str | None = None,
    required: bool = True,
    min_length: int = 0,
    max_length: int = MAX_TEXT_LENGTH,
    doc: str = "",
) -> Field:
    """A string of `min_length` to `max_length` characters; optional when it has a default."""
    return Field(
        name=name,
        type="text",
        required=required and default is None,
        default=default,
        low=min_length,
        high=max_length,
        doc=doc,
    )


def integer(
    name: str, low: int, high: int, *, default: int | None = None, required: bool = True, doc: str = ""
) -> Field:
    """An integer in [low, high] (never a bool); optional when it has a default."""
    return Field(
        name=name, type="int", required=required and default is None, default=default, low=low, high=high, doc=doc
    )


def quantity(name: str = "qty", *, doc: str = "units") -> Field:
    return integer(name, 1, MAX_QTY, doc=doc)


def boolean(name: str, *, default: bool, doc: str = "") -> Field:
    return Field(name=name, type="bool", required=False, default=default, doc=doc)


def choice(
    name: str, choices: tuple[str, ...], *, default: str | None = None, required: bool = True, doc: str = ""
) -> Field:
    """One of `choices`; optional when it has a default."""
    return Field(
        name=name,
        type="choice",
        required=required and default is None,
        default=default,
        choices=choices,
        doc=doc,
    )


def digest(name: str, *, doc: str = "") -> Field:
    """A sha256 digest given as 64 lowercase hex characters."""
    return Field(name=name, type="hash", doc=doc)


def hexbytes(name: str, min_bytes: int, max_bytes: int, *, doc: str = "") -> Field:
    """`min_bytes` to `max_bytes` bytes written as lowercase hex (two digits a byte)."""
    return Field(name=name, type="hex", low=min_bytes, high=max_bytes, doc=doc)


def items(name: str, *fields: Field, max_items: int = MAX_ITEMS, required: bool = True, doc: str = "") -> Field:
    """A list of 1 to `max_items` maps, each of `fields`."""
    return Field(name=name, type="list", required=required, low=1, high=max_items, fields=fields, doc=doc)


def mapping(name: str, *fields: Field, required: bool = True, doc: str = "") -> Field:
    return Field(name=name, type="map", required=required, fields=fields, doc=doc)


def table(
    name: str, item: Field, *, min_items: int = 0, max_items: int = MAX_ITEMS, default: Any = None, doc: str = ""
) -> Field:
    """A map of `min_items` to `max_items` keys of 1-`MAX_ID_LENGTH` characters, each to a value of `item`."""
    return Field(
        name=name,
        type="table",
        required=default is None,
        default=default,
        low=min_items,
        high=max_items,
        item=item,
        doc=doc,
    )


def array(name: str, item: Field, *, max_items: int = MAX_ITEMS, default: Any = None, doc: str = "") -> Field:
    """A list of 0 to `max_items` values, each of `item`."""
    return Field(name=name, type="array", required=default is None, default=default, high=max_items, item=item, doc=doc)


def anything(name: str, *, required: bool = True, doc: str = "") -> Field:
    return Field(name=name, type="any", required=required, doc=doc)


def payload(*fields: Field) -> Field:
    """The spec of one tx kind's payload."""
    return mapping("payload", *fields)


# checking payloads


def read_payload(spec: Field, value: dict[str, Any]) -> dict[str, Any]:
    """`value` checked against `spec` in one pass: every declared field, defaults filled in; or `bad_payload`."""
    return _read_map(spec.fields, value, "")


def read_value(spec: Field, value: Any) -> Any:
    """One value (a configuration value, say) checked against `spec`, named by the spec's name; or `bad_payload`."""
    return _read_field(spec, value, spec.name)


def _read_map(fields: tuple[Field, ...], value: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    present = 0
    for field in fields:
        name = field.name
        item = value.get(name)
        if item is None:
            if name in value:
                present += 1
            if field.required:
                raise bad(_describe_rule(field, path + name))
            out[name] = field.default
            continue
        present += 1
        out[name] = _read_field(field, item, path + name)
    if present != len(value):
        for key in value:
            if not any(key == field.name for field in fields):
                raise bad(f"{path}{key} is not a field of this payload" if type(key) is str else "keys are strings")
    return out


def _read_field(field: Field, item: Any, where: str) -> Any:
    """A value of `field` found at `where` (its dotted name in messages), checked; nested values checked too."""
    kind = field.type
    if kind == "list":
        if type(item) is not list or not field.low <= len(item) <= field.high:
            raise bad(_describe_rule(field, where))
        return [_read_item(field.fields, element, f"{where}[{i}].") for i, element in enumerate(item)]
    if kind == "map":
        if type(item) is not dict:
            raise bad(_describe_rule(field, where))
        return _read_map(field.fields, item, where + ".")
    if kind == "table" and field.item is not None:
        if type(item) is not dict or not field.low <= len(item) <= field.high:
            raise bad(_describe_rule(field, where))
        for key in item:
            if type(key) is not str or not 0 < len(key) <= MAX_ID_LENGTH:
                raise bad(_describe_rule(field, where))
        return {key: _read_field(field.item, element, f"{where}.{key}") for key, element in item.items()}
    if kind == "array" and field.item is not None:
        if type(item) is not list or not field.low <= len(item) <= field.high:
            raise bad(_describe_rule(field, where))
        return [_read_field(field.item, element, f"{where}[{i}]") for i, element in enumerate(item)]
    if kind == "id":
        ok = type(item) is str and 0 < len(item) <= MAX_ID_LENGTH and not item.strip(ID_CHARS)
    elif kind == "int":
        ok = type(item) is int and field.low <= item <= field.high
    elif kind == "text":
        ok = type(item) is str and field.low <= len(item) <= field.high
    elif kind == "choice":
        ok = type(item) is str and item in field.choices
    elif kind == "bool":
        ok = type(item) is bool
    elif kind == "hash":
        ok = type(item) is str and len(item) == 64 and not item.strip(HEX_DIGITS)
    elif kind == "hex":
        ok = (
            type(item) is str
            and len(item) % 2 == 0
            and field.low <= len(item) // 2 <= field.high
            and not item.strip(HEX_DIGITS)
        )
    else:
        ok = kind == "any"
    if not ok:
        raise bad(_describe_rule(field, where))
    return item


def _read_item(fields: tuple[Field, ...], element: Any, path: str) -> dict[str, Any]:
    if type(element) is not dict:
        raise bad(f"{path[:-1]} must be a map")
    return _read_map(fields, element, path)


def _describe_rule(field: Field, where: str) -> str:
    """What the field at `where` must be, as the refusal says it."""
    kind = field.type
    if kind == "id":
        return f"{where} must be an id of 1-{MAX_ID_LENGTH} letters, digits, '.', '_' or '-'"
    if kind == "int":
        return f"{where} must be an integer in [{field.low}, {field.high}]"
    if kind == "text":
        return f"{where} must be a string of {field.low}-{field.high} characters"
    if kind == "list":
        return f"{where} must be a list of {field.low}-{field.high} maps"
    if kind == "map":
        return f"{where} must be a map"
    if kind == "table":
        return f"{where} must be a map of {field.low}-{field.high} keys of 1-{MAX_ID_LENGTH} characters"
    if kind == "array":
        return f"{where} must be a list of {field.low}-{field.high} values"
    if kind == "choice":
        return f"{where} must be one of {', '.join(field.choices)}"
    if kind == "bool":
        return f"{where} must be true or false"
    if kind == "hash":
        return f"{where} must be a sha256 digest in lowercase hex"
    if kind == "hex":
        return f"{where} must be {field.low}-{field.high} bytes in lowercase hex"
    return f"{where} is required"


# the spec as plain data


def describe(field: Field) -> dict[str, Any]:
    """A field (or a whole payload spec) as plain data: name, type, required, doc, and what applies of default,
    bounds, choices, nested fields and the spec of a table's values or an array's items."""
    out: dict[str, Any] = {"name": field.name, "type": field.type, "required": field.required, "doc": field.doc}
    if field.default is not None:
        out["default"] = field.default
    if field.type == "int":
        out["minimum"] = field.low
        out["maximum"] = field.high
    elif field.type == "text":
        out["min_length"] = field.low
        out["max_length"] = field.high
    elif field.type == "id":
        out["min_length"] = 1
        out["max_length"] = MAX_ID_LENGTH
        out["characters"] = ID_CHARS
    elif field.type == "hash":
        out["length"] = 64
        out["characters"] = HEX_DIGITS
    elif field.type == "hex":
        out["min_length"] = 2 * field.low
        out["max_length"] = 2 * field.high
        out["characters"] = HEX_DIGITS
    elif field.type in ("list", "table", "array"):
        out["min_items"] = field.low
        out["max_items"] = field.high
    elif field.type == "choice":
        out["choices"] = list(field.choices)
    if field.type in ("list", "map"):
        out["fields"] = [describe(child) for child in field.fields]
    if field.item is not None:
        out["item"] = describe(field.item)
    return out
