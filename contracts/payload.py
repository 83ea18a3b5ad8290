"""Reading tx payload fields: every rule validates its input the same way.

A missing or malformed field is refused with code `bad_payload`; ids are short
strings of letters, digits, `.`, `_` and `-`, so they are safe inside state keys.
"""

from __future__ import annotations

from typing import Any

from contracts.errors import Rejected

MAX_ID_LENGTH = 64
"""Longest id accepted (SKU, location, order, lot, ...)."""

MAX_TEXT_LENGTH = 256
"""Longest free text accepted (reasons, documents, carrier names)."""

MAX_QTY = 1_000_000
"""Largest quantity in one line or movement."""

MAX_AMOUNT = 10**12
"""Largest money amount in minor units."""

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def bad(message: str) -> Rejected:
    return Rejected("bad_payload", message)


def is_id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and all(ch in _ID_CHARS for ch in value)


def get_id(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not is_id(value):
        raise bad(f"{field} must be an id of 1-{MAX_ID_LENGTH} letters, digits, '.', '_' or '-'")
    return str(value)


def get_optional_id(payload: dict[str, Any], field: str) -> str | None:
    return None if payload.get(field) is None else get_id(payload, field)


def get_text(payload: dict[str, Any], field: str, default: str | None = None) -> str:
    value = payload.get(field, default)
    if type(value) is not str or len(value) > MAX_TEXT_LENGTH:
        raise bad(f"{field} must be a string of at most {MAX_TEXT_LENGTH} characters")
    return value


def get_int(payload: dict[str, Any], field: str, low: int, high: int, default: int | None = None) -> int:
    value = payload.get(field, default)
    if type(value) is not int or not low <= value <= high:
        raise bad(f"{field} must be an integer in [{low}, {high}]")
    return value


def get_bool(payload: dict[str, Any], field: str, default: bool) -> bool:
    value = payload.get(field, default)
    if type(value) is not bool:
        raise bad(f"{field} must be true or false")
    return value


def get_choice(payload: dict[str, Any], field: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = payload.get(field, default)
    if value not in choices:
        raise bad(f"{field} must be one of {', '.join(choices)}")
    return str(value)


def get_list(payload: dict[str, Any], field: str, max_items: int = 200) -> list[dict[str, Any]]:
    value = payload.get(field)
    if type(value) is not list or not 0 < len(value) <= max_items or any(type(item) is not dict for item in value):
        raise bad(f"{field} must be a list of 1-{max_items} maps")
    return value


def get_qty(item: dict[str, Any], field: str = "qty") -> int:
    return get_int(item, field, 1, MAX_QTY)


def get_hash_hex(payload: dict[str, Any], field: str) -> str:
    """A sha256 digest given as 64 lowercase hex characters."""
    value = payload.get(field)
    if type(value) is not str or len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
        raise bad(f"{field} must be a sha256 digest in lowercase hex")
    return value
