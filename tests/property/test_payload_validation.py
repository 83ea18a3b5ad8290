"""Hostile payloads meet nothing but the contracts' typed refusal.

For every tx kind, hypothesis builds payloads from the kind's own spec and
then spoils them: fields missing or null, fields of the wrong type (a bool for
an integer, a string for a list, a map for an id), integers far out of bounds
or beyond 64 bits, empty and oversized lists, unknown fields, keys that are not
strings. The spec check (`contracts.payload.read_payload`) either refuses with
`Rejected("bad_payload", ...)` or returns exactly the declared fields, each of
its declared type and within its bounds; and the same payloads signed and run
through the real runtime on a shop ledger never end in `contract_error` (a rule
that raised something other than its refusal). Payloads the encoding cannot
carry (keys that are not strings) never reach a rule and are left out there.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contracts.errors import Rejected
from contracts.payload import HEX_DIGITS, ID_CHARS, MAX_ID_LENGTH, read_payload
from ledger.encoding import encode
from ledger.errors import EncodingError
from tests.helpers.contracts import Ledger, get_contracts, make_shop

SPECS: dict[str, Any] = {
    kind: spec for module in get_contracts().modules.values() for kind, spec in module.payloads.items()
}
"""Tx kind -> its payload spec, as the loaded contracts declare it."""

KINDS = sorted(SPECS)

SIGNER_OF_ROLE = {"operator": "operator-1", "channel": "channel-1", "store": "store-1", "validator": "node-0"}
"""Who sends a kind: an identity holding one of the roles it needs."""

MSGPACK_INTS = st.integers(-(2**63), 2**64 - 1)
"""Integers the ledger's encoding can carry (a payload from the wire holds no others)."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    MSGPACK_INTS,
    st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]),
    st.text(max_size=10),
    st.sampled_from(["", "a/b", "x" * (MAX_ID_LENGTH + 1), "x" * 300, "SO1", "TEE", "WH1", "é"]),
    st.binary(max_size=8),
)
"""Values of every kind the decoder can produce, biased to the edges."""

hostile = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
"""Any ledger value, nested a little."""


def valid_value(field: Any) -> st.SearchStrategy[Any]:
    """What the spec accepts for `field`."""
    kind = field.type
    if kind == "id":
        return st.text(alphabet=ID_CHARS, min_size=1, max_size=MAX_ID_LENGTH)
    if kind == "text":
        return st.text(min_size=field.low, max_size=min(field.high, 20))
    if kind == "int":
        return st.integers(field.low, field.high)
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(field.choices)
    if kind == "hash":
        return st.text(alphabet=HEX_DIGITS, min_size=64, max_size=64)
    if kind == "hex":
        return st.binary(min_size=field.low, max_size=min(field.high, 64)).map(bytes.hex)
    if kind == "list":
        return st.lists(valid_map(field.fields), min_size=field.low, max_size=min(field.high, 3))
    if kind == "map":
        return valid_map(field.fields)
    return hostile


def spoiled_value(field: Any) -> st.SearchStrategy[Any]:
    """A valid value, or one that may well not be: another type, out of bounds, an empty or oversized list."""
    kind = field.type
    edges: list[st.SearchStrategy[Any]] = [hostile]
    if kind == "int":
        edges.append(st.sampled_from([field.low - 1, field.high + 1, True, False, 2**64 - 1, -(2**63)]))
    if kind == "list":
        edges.append(st.just([]))
        edges.append(valid_map(field.fields).map(lambda item: [item] * (field.high + 1)))
        edges.append(st.lists(spoiled_map(field.fields), min_size=1, max_size=3))
    if kind == "map":
        edges.append(spoiled_map(field.fields))
    return st.one_of(valid_value(field), *edges)


@st.composite
def _build_map(draw: st.DrawFn, fields: tuple[Any, ...], spoil: bool) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for field in fields:
        if spoil:
            presence = draw(st.sampled_from(["value", "value", "value", "missing", "null"]))
            if presence == "missing":
                continue
            out[field.name] = None if presence == "null" else draw(spoiled_value(field))
        elif field.required or draw(st.booleans()):
            out[field.name] = draw(valid_value(field))
    if spoil and draw(st.integers(0, 4)) == 0:
        out[draw(st.one_of(st.text(max_size=8), MSGPACK_INTS, st.binary(max_size=4)))] = draw(scalars)
    return out


def valid_map(fields: tuple[Any, ...]) -> st.SearchStrategy[dict[Any, Any]]:
    return _build_map(fields, False)


def spoiled_map(fields: tuple[Any, ...]) -> st.SearchStrategy[dict[Any, Any]]:
    return _build_map(fields, True)


@st.composite
def kind_and_payload(draw: st.DrawFn) -> tuple[str, dict[Any, Any]]:
    kind = draw(st.sampled_from(KINDS))
    fields = SPECS[kind].fields
    sent = draw(st.one_of(spoiled_map(fields), valid_map(fields), st.dictionaries(st.text(max_size=8), hostile)))
    return kind, sent


def conforms(field: Any, value: Any) -> bool:
    """Is `value` what the spec promises a rule for `field` (None only for an optional field)?"""
    if value is None:
        return not field.required
    kind = field.type
    if kind == "int":
        return type(value) is int and field.low <= value <= field.high
    if kind in ("id", "text", "choice", "hash", "hex"):
        return type(value) is str
    if kind == "bool":
        return type(value) is bool
    if kind == "list":
        return type(value) is list and all(conforms_map(field.fields, item) for item in value)
    if kind == "map":
        return conforms_map(field.fields, value)
    return True


def conforms_map(fields: tuple[Any, ...], value: Any) -> bool:
    return (
        type(value) is dict
        and list(value) == [field.name for field in fields]
        and all(conforms(field, value[field.name]) for field in fields)
    )


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind_and_payload())
def test_the_spec_check_refuses_with_bad_payload_or_reads_the_declared_fields(case: tuple[str, Any]) -> None:
    kind, sent = case
    spec = SPECS[kind]
    try:
        fields = read_payload(spec, sent)
    except Rejected as refused:
        assert refused.code == "bad_payload", (kind, refused.code, refused.message)
        return
    assert conforms_map(spec.fields, fields), (kind, sent, fields)


_SHOP: list[Ledger] = []


def get_shop() -> Ledger:
    """One shop for all examples: `try_tx` commits nothing."""
    if not _SHOP:
        _SHOP.append(make_shop())
    return _SHOP[0]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind_and_payload())
def test_no_hostile_payload_makes_a_rule_fail_with_anything_but_its_refusal(case: tuple[str, Any]) -> None:
    kind, sent = case
    try:
        encode(sent)
    except EncodingError:
        assume(False)
    ledger = get_shop()
    roles = sorted(get_contracts().rules[kind].roles)
    receipt, _ = ledger.try_tx(SIGNER_OF_ROLE[roles[0]], kind, sent)
    assert receipt["code"] != "contract_error", (kind, sent, receipt)
