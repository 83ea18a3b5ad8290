"""Admission refuses, before any block, a payload holding a field its kind does not declare.

For every tx kind, hypothesis builds a payload that fits the kind's spec and
adds a key the spec does not name, at the top or inside a nested map or list
item. Admission refuses the signed tx with `bad_payload` naming that key, so
nothing unplanned (a customer's name, say) is ever carried into a block, not
even as a rejected tx; the same payload without the key is admitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contracts import load_contracts
from contracts.errors import Rejected
from contracts.payload import read_payload
from ledger.encoding import encode
from ledger.errors import EncodingError
from ledger.store import Store
from node.admission import Admission
from tests.helpers.builders import Network, make_network
from tests.property.test_payload_validation import KINDS, SPECS, valid_map

SIGNER_OF_ROLE = {
    "operator": "operator-1",
    "channel": "channel-1",
    "store": "store-1",
    "validator": "node-0",
    "payment_provider": "psp-1",
    "auditor": "auditor-1",
}
"""An identity of `make_network` holding each role."""

CONTRACTS = load_contracts()

extra_names = st.text(min_size=1, max_size=12)
"""Names for the unplanned key."""


@pytest.fixture(scope="module")
def admission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, Admission]]:
    network = make_network(1)
    store = Store(Path(tmp_path_factory.mktemp("admission")) / "data")
    yield network, Admission(network.genesis, CONTRACTS, store)
    store.close()


def nested_places(fields: tuple[Any, ...], payload: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every map of `payload` (itself, its maps, its list items) with its dotted path."""
    yield path, payload
    for field in fields:
        value = payload.get(field.name)
        if field.type == "map" and isinstance(value, dict):
            yield from nested_places(field.fields, value, f"{path}{field.name}.")
        elif field.type == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                yield from nested_places(field.fields, item, f"{path}{field.name}[{i}].")


@st.composite
def payload_with_extra_key(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """A kind, a payload that fits its spec, the same with one undeclared key, and that key's dotted path."""
    kind = draw(st.sampled_from(KINDS))
    fields = SPECS[kind].fields
    valid = draw(valid_map(fields))
    try:
        read_payload(SPECS[kind], valid)
        encode(valid)
    except (Rejected, EncodingError):
        assume(False)  # an `any` field drawn null, or a value beyond what the ledger encodes
    spoiled = _copy(valid)
    places = list(nested_places(fields, spoiled, ""))
    path, target = draw(st.sampled_from(places))
    declared = {field.name for field in _fields_at(fields, path)}
    name = draw(extra_names.filter(lambda n: n not in declared and n not in ("ship_to", "notes")))
    target[name] = draw(st.one_of(st.text(max_size=20), st.integers(0, 10), st.none()))
    return kind, valid, spoiled, path + name


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _fields_at(fields: tuple[Any, ...], path: str) -> tuple[Any, ...]:
    """The declared fields of the map at dotted `path` (as `nested_places` writes it)."""
    for part in [p for p in path.split(".") if p]:
        name = part.split("[")[0]
        fields = next(field for field in fields if field.name == name).fields
    return fields


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=payload_with_extra_key())
def test_a_field_outside_the_kind_spec_is_refused_at_admission_naming_it(
    admission: tuple[Network, Admission], case: tuple[str, dict[str, Any], dict[str, Any], str]
) -> None:
    network, checker = admission
    kind, valid, spoiled, where = case
    signer = SIGNER_OF_ROLE[sorted(CONTRACTS.rules[kind].roles)[0]]
    with pytest.raises(Rejected) as refused:
        checker.check(network.tx(signer, kind, spoiled))
    assert refused.value.code == "bad_payload"
    assert f"{where} is not a field of this payload" in refused.value.message
    checker.check(network.tx(signer, kind, valid))


def test_every_kind_declares_its_payload() -> None:
    assert set(KINDS) == set(CONTRACTS.rules)
