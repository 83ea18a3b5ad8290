"""The payload specs: every tx kind has one, the reference shows exactly them, and they refuse what they should.

The payload tables of `docs/spec/transactions.md` (between the markers) are
rendered from `ContractSet.payload_specs()`; when a spec changes, rewrite them
with `python -m tests.unit.contracts.test_payload_spec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contracts.errors import Rejected
from contracts.payload import MAX_QTY, describe, ident, integer, items, payload, quantity, read_payload, text
from tests.helpers.contracts import get_contracts

DOC = Path(__file__).resolve().parents[3] / "docs" / "spec" / "transactions.md"
"""The transaction reference."""

BEGIN = "<!-- payload tables: generated from the contracts' PAYLOADS, do not edit by hand -->"
END = "<!-- end of payload tables -->"


def render_type(field: dict[str, Any]) -> str:
    kind = field["type"]
    if kind == "int":
        return f"integer {field['minimum']}..{field['maximum']}"
    if kind == "text":
        return f"text of {field['min_length']}-{field['max_length']} characters"
    if kind == "list":
        return f"list of {field['min_items']}-{field['max_items']} maps"
    if kind == "choice":
        return " / ".join(f"`{choice}`" for choice in field["choices"])
    if kind == "hash":
        return "sha256, lowercase hex"
    if kind == "hex":
        return f"{field['min_length'] // 2}-{field['max_length'] // 2} bytes, lowercase hex"
    if kind == "table":
        return f"map of {field['min_items']}-{field['max_items']} keys to {render_type(field['item'])}"
    if kind == "array":
        return f"list of up to {field['max_items']} of {render_type(field['item'])}"
    return {"id": "id", "bool": "true / false", "map": "map", "any": "any value"}[kind]


def render_rows(fields: list[dict[str, Any]], prefix: str = "") -> list[str]:
    rows = []
    for field in fields:
        name = prefix + field["name"]
        default = f"`{field['default']!r}`".replace("'", '"') if "default" in field else ""
        default = default.replace("True", "true").replace("False", "false")
        cells = [f"`{name}`", render_type(field), "yes" if field["required"] else "no", default, field["doc"]]
        rows.append("|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|")
        if field["type"] == "list":
            rows.extend(render_rows(field["fields"], name + "[]."))
        elif field["type"] == "map":
            rows.extend(render_rows(field["fields"], name + "."))
    return rows


def render_tables(specs: dict[str, dict[str, Any]]) -> str:
    """The payload tables, one per tx kind in kind order, as the reference shows them."""
    parts = [BEGIN]
    for kind, spec in specs.items():
        header = "| field | type | required | default | meaning |\n|---|---|---|---|---|"
        parts.append(f"### `{kind}`\n\n{header}\n" + "\n".join(render_rows(spec["fields"])))
    parts.append(END)
    return "\n\n".join(parts)


def get_documented() -> str:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def rewrite_doc() -> None:
    text = DOC.read_text()
    DOC.write_text(text.replace(get_documented(), render_tables(get_contracts().payload_specs())))


def test_every_tx_kind_declares_its_payload() -> None:
    contracts = get_contracts()
    assert sorted(contracts.payload_specs()) == sorted(contracts.rules)


def test_the_reference_shows_the_payload_specs() -> None:
    expected = render_tables(get_contracts().payload_specs())
    assert get_documented() == expected, "run `python -m tests.unit.contracts.test_payload_spec` to rewrite them"


def test_the_specs_are_plain_data() -> None:
    def check(value: Any) -> None:
        if isinstance(value, dict):
            assert all(isinstance(key, str) for key in value)
            for item in value.values():
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        else:
            assert value is None or isinstance(value, str | int | bool), value

    check(get_contracts().payload_specs())


SPEC = payload(
    ident("order_id"),
    text("note", default="none"),
    integer("count", 0, 10, required=False),
    items("lines", ident("sku"), quantity(), max_items=3),
)


def test_a_payload_reads_as_every_declared_field_with_defaults() -> None:
    sent = {"order_id": "SO1", "lines": [{"sku": "TEE", "qty": 2}], "count": None}
    assert read_payload(SPEC, sent) == {
        "order_id": "SO1",
        "note": "none",
        "count": None,
        "lines": [{"sku": "TEE", "qty": 2}],
    }


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ({"lines": [{"sku": "TEE", "qty": 1}]}, "order_id must be an id"),
        ({"order_id": "a/b", "lines": [{"sku": "TEE", "qty": 1}]}, "order_id must be an id"),
        ({"order_id": "SO1", "lines": []}, "lines must be a list of 1-3 maps"),
        ({"order_id": "SO1", "lines": [{"sku": "TEE", "qty": True}]}, "lines[0].qty must be an integer in [1, "),
        ({"order_id": "SO1", "lines": [{"sku": "T", "qty": MAX_QTY + 1}]}, "lines[0].qty must be an integer"),
        ({"order_id": "SO1", "lines": [{"sku": "TEE", "qty": 1, "x": 1}]}, "lines[0].x is not a field"),
        ({"order_id": "SO1", "lines": ["TEE"]}, "lines[0] must be a map"),
        ({"order_id": "SO1", "lines": [{"sku": "TEE", "qty": 1}], "note": 5}, "note must be a string"),
        ({"order_id": "SO1", "lines": [{"sku": "TEE", "qty": 1}], 7: 1}, "keys are strings"),
    ],
)
def test_a_payload_that_does_not_fit_is_refused_with_bad_payload(sent: dict[str, Any], message: str) -> None:
    with pytest.raises(Rejected) as refused:
        read_payload(SPEC, sent)
    assert refused.value.code == "bad_payload"
    assert refused.value.message.startswith(message), refused.value.message


def test_describe_gives_bounds_defaults_and_nested_fields() -> None:
    described = describe(SPEC)
    assert described["fields"][1] == {
        "name": "note",
        "type": "text",
        "required": False,
        "doc": "",
        "default": "none",
        "min_length": 0,
        "max_length": 256,
    }
    assert described["fields"][3]["fields"][1]["maximum"] == MAX_QTY


if __name__ == "__main__":
    rewrite_doc()
