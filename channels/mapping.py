"""Reading fields of a channel order: each reader returns the value in its type, or raises `Unfit` saying which
field is wrong and why. Adapters map with these, so every malformed order is dead-lettered with a reason."""

from __future__ import annotations

from typing import Any

from channels.money import AmountError, get_exponent
from channels.records import Unfit

MAX_FIELD_LENGTH = 200
"""Longest id or text taken from a channel order."""


def require_field(record: dict[str, Any], key: str) -> Any:
    """A field the order must have (not absent, not null)."""
    if record.get(key) is None:
        raise Unfit("missing_field", f"the order has no {key}")
    return record[key]


def read_map(value: Any, where: str) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise Unfit("malformed", f"{where} must be an object, not {type(value).__name__}")
    return value


def read_list(value: Any, where: str) -> list[Any]:
    """A JSON list."""
    if not isinstance(value, list):
        raise Unfit("malformed", f"{where} must be a list, not {type(value).__name__}")
    return value


def read_bool(value: Any, where: str) -> bool:
    """A JSON `true` or `false` (not 1, not "yes")."""
    if type(value) is not bool:
        raise Unfit("malformed", f"{where} must be true or false, not {value!r}")
    return value


def read_id(value: Any, where: str) -> str:
    """An id a channel sends as a number or a string, as text."""
    if value is None:
        raise Unfit("missing_field", f"the order has no {where}")
    if type(value) is int and value >= 0:
        return str(value)
    if type(value) is str and value.strip() and len(value) <= MAX_FIELD_LENGTH and value.isprintable():
        return value
    raise Unfit("malformed", f"{where} must be a number or a short printable string, not {value!r}"[:300])


def read_text_field(value: Any, where: str) -> str | None:
    """An optional short text."""
    if value is None or value == "":
        return None
    if type(value) is not str or len(value) > MAX_FIELD_LENGTH:
        raise Unfit("malformed", f"{where} must be a short string, not {value!r}"[:300])
    return value


def require_currency(value: Any) -> str:
    """The order's ISO 4217 currency; an order without one is not given any."""
    if value is None or value == "":
        raise Unfit("missing_currency", "the order has no currency")
    if type(value) is not str:
        raise Unfit("unknown_currency", f"currency {value!r} is not an ISO 4217 code")
    try:
        get_exponent(value)
    except AmountError as exc:
        raise Unfit("unknown_currency", str(exc)) from None
    return value
