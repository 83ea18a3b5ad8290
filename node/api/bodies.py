"""Request bodies of the write routes, generated from the contracts' payload specs (`PAYLOADS`).

A tx kind's payload is declared once, by its contract (`contracts.payload`);
`payload_model(kind)` turns that spec into a Pydantic model, so the API
documents each body in the OpenAPI and refuses one that does not fit with
400 before anything is signed, by the very rules the contract applies: no
field besides the declared ones, no coercion (a `qty` of `"2"`, `2.0` or
`true` is refused), ids, texts, integers, choices and lists within their
bounds. A route whose path names an id (`/orders/{order_id}/cancel`) takes
the payload without that field (`without`), and adds it from the path. A
body becomes its payload as `to_payload()`: absent optional fields stay
absent, and the contract applies their defaults. What only the ledger can
know (a known SKU, an allowed transition) is still the contract's to refuse.
"""

from __future__ import annotations

import importlib
import keyword
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts.payload import HEX_DIGITS, MAX_ID_LENGTH
from contracts.payload import Field as Spec
from contracts.runtime import CONTRACT_MODULES

ID_PATTERN = rf"^[A-Za-z0-9._-]{{1,{MAX_ID_LENGTH}}}$"
HASH_PATTERN = rf"^[{HEX_DIGITS}]{{64}}$"


class TxBody(BaseModel):
    """A strict request body: the payload of one tx kind."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    def to_payload(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def get_payload_specs() -> dict[str, Spec]:
    """Every tx kind's payload spec, from the contract modules the ledger runs."""
    specs: dict[str, Spec] = {}
    for name in CONTRACT_MODULES:
        specs.update(getattr(importlib.import_module(f"contracts.{name}"), "PAYLOADS", {}))
    return specs


def camel(name: str) -> str:
    """`order.cancel` -> `OrderCancel`, `exchange_of` -> `ExchangeOf`."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace(".", "_").replace("-", "_").split("_"))


def field_type(spec: Spec, owner: str) -> Any:
    """The annotated Python type of one spec field (a nested model for maps and list items)."""
    if spec.type == "id":
        return Annotated[str, Field(pattern=ID_PATTERN)]
    if spec.type == "text":
        return Annotated[str, Field(min_length=spec.low, max_length=spec.high)]
    if spec.type == "int":
        return Annotated[int, Field(ge=spec.low, le=spec.high)]
    if spec.type == "bool":
        return bool
    if spec.type == "choice":
        return Literal[spec.choices]
    if spec.type == "hash":
        return Annotated[str, Field(pattern=HASH_PATTERN)]
    if spec.type == "hex":
        return Annotated[
            str, Field(min_length=2 * spec.low, max_length=2 * spec.high, pattern=rf"^(?:[{HEX_DIGITS}]{{2}})*$")
        ]
    if spec.type == "list":
        item = build_model(f"{owner}{camel(spec.name)}Item", spec.fields)
        return Annotated[list[item], Field(min_length=spec.low, max_length=spec.high)]  # type: ignore[valid-type]
    if spec.type == "map":
        return build_model(f"{owner}{camel(spec.name)}", spec.fields)
    return Any


def build_model(name: str, fields: tuple[Spec, ...]) -> type[TxBody]:
    """A strict model with one attribute per spec field (a Python keyword such as `from` by its alias)."""
    attributes: dict[str, Any] = {}
    for spec in fields:
        annotation = field_type(spec, name)
        default_note = f" (default {spec.default!r})" if spec.default is not None else ""
        info = Field(
            default=... if spec.required else None,
            alias=spec.name if keyword.iskeyword(spec.name) else None,
            description=(spec.doc + default_note).strip() or None,
        )
        attribute = f"{spec.name}_" if keyword.iskeyword(spec.name) else spec.name
        attributes[attribute] = (annotation if spec.required else annotation | None, info)
    model: type[TxBody] = create_model(name, __base__=TxBody, **attributes)
    return model


@cache
def payload_model(kind: str, without: str | None = None) -> type[TxBody]:
    """The request body of `kind`: its payload spec, less the field `without` that the route's path supplies."""
    spec = get_payload_specs()[kind]
    fields = tuple(field for field in spec.fields if field.name != without)
    model = build_model(camel(kind) + ("" if without is None else "Body"), fields)
    model.__doc__ = f"The payload of `{kind}`" + ("" if without is None else f" (`{without}` from the path)") + "."
    return model
