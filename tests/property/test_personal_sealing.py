"""Sealing personal data: what is sealed opens to itself with a reader's key, and to nothing else.

Hypothesis builds ship-tos and notes within their bounds; each seals and
opens again to the same data with the key of every reader, not with a
stranger's; any one byte changed in the ciphertext, a wrapped key or the
commitment makes it refuse; the same seed seals the same record (a retried
request), another seed another one; no field of the ship-to appears in the
sealed record.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.personal import (
    COARSE_MICRO_DEGREES,
    COUNTRIES,
    MAX_NOTES,
    EncryptionKey,
    InvalidPersonalData,
    PersonalData,
    UnreadablePersonalData,
    check_personal,
    open_personal,
    seal_order_fields,
    seal_personal,
    seeded_random,
    unwrap_key,
)

READERS = {"org-0": EncryptionKey.generate(), "org-1": EncryptionKey.generate()}
STRANGER = EncryptionKey.generate()

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=4, max_size=16)
ship_tos = st.fixed_dictionaries(
    {
        "name": words,
        "address_lines": st.lists(words, min_size=1, max_size=4),
        "city": words,
        "postcode": st.text("0123456789ABCDEF ", min_size=4, max_size=8),
        "region": words,
        "country": st.sampled_from(sorted(COUNTRIES)),
        "phone": st.text("+0123456789 ", min_size=6, max_size=20),
        "email": st.builds(lambda a, b: f"{a}@{b}.example", st.text("abcxyz", min_size=4), st.text("dez", min_size=4)),
    }
)
data = st.builds(check_personal, st.one_of(st.none(), ship_tos), st.one_of(st.none(), st.text(max_size=MAX_NOTES)))


def open_with(sealed: dict, org: str, key: EncryptionKey) -> PersonalData:
    entry = next(e for e in sealed["keys"] if e["org"] == org)
    data_key = unwrap_key(entry, bytes.fromhex(sealed["commitment"]), key)
    return open_personal(sealed["ciphertext"], sealed["commitment"], data_key)


@settings(max_examples=60, deadline=None)
@given(data, st.integers(0, 10_000))
def test_sealed_data_opens_to_itself_for_every_reader_and_tampering_is_refused(
    personal: PersonalData, flip: int
) -> None:
    sealed = dict(seal_personal(personal, {org: key.public for org, key in READERS.items()}))
    for org, key in READERS.items():
        assert open_with(sealed, org, key) == personal
    with pytest.raises(UnreadablePersonalData):
        open_with(sealed, "org-0", STRANGER)
    for field in ("ciphertext", "commitment"):
        raw = bytearray.fromhex(sealed[field])
        raw[flip % len(raw)] ^= 1 << (flip % 8)
        with pytest.raises(UnreadablePersonalData):
            open_with({**sealed, field: raw.hex()}, "org-1", READERS["org-1"])
    wrapped = bytearray.fromhex(sealed["keys"][0]["wrapped"])
    wrapped[flip % len(wrapped)] ^= 1
    keys = [{**sealed["keys"][0], "wrapped": wrapped.hex()}]
    with pytest.raises(UnreadablePersonalData):
        open_with({**sealed, "keys": keys}, "org-0", READERS["org-0"])
    text = json.dumps(sealed)
    for value in (personal["ship_to"] or {}).values():
        for part in value if isinstance(value, list) else [value]:
            assert json.dumps(part)[1:-1] not in text or len(part) < 6


@settings(max_examples=20, deadline=None)
@given(data, st.binary(min_size=32, max_size=32))
def test_the_same_seed_seals_the_same_record_and_another_seed_another(personal: PersonalData, seed: bytes) -> None:
    readers = {"org-0": READERS["org-0"].public}
    first = seal_personal(personal, readers, seeded_random(seed))
    assert seal_personal(personal, readers, seeded_random(seed)) == first
    assert seal_personal(personal, readers, seeded_random(seed[::-1] + b"x")) != first
    assert open_with(dict(first), "org-0", READERS["org-0"]) == personal


@pytest.mark.parametrize(
    ("ship_to", "named"),
    [
        ({"name": "A", "city": "B", "country": "NL"}, r"ship_to\.address_lines is required"),
        ({"extra": 1}, r"ship_to\.extra is not a field"),
    ],
)
def test_a_ship_to_of_another_shape_is_refused_naming_the_field(ship_to: dict, named: str) -> None:
    with pytest.raises(InvalidPersonalData, match=named):
        check_personal(ship_to, None)


def test_a_country_must_be_an_iso_code() -> None:
    good = {
        "name": "A",
        "address_lines": ["1 Main St"],
        "city": "Lisbon",
        "postcode": "1000-001",
        "region": "LIS",
        "country": "PT",
        "phone": "+351 21 000 0000",
        "email": "a@example.org",
    }
    assert check_personal(good, None)["ship_to"] == good
    for country in ("pt", "XX", "PRT"):
        with pytest.raises(InvalidPersonalData, match=r"ship_to\.country"):
            check_personal({**good, "country": country}, None)


@given(st.integers(-90_000_000, 90_000_000), st.integers(-180_000_000, 180_000_000))
def test_delivery_coordinates_leave_the_sender_within_a_kilometre_and_on_the_grid(lat: int, lon: int) -> None:
    payload = {"external_ref": "r", "delivery": {"region": "NL", "lat": lat, "lon": lon}}
    sent = seal_order_fields(payload, "org-0", None)["delivery"]
    assert sent["region"] == "NL"
    for exact, coarse in ((lat, sent["lat"]), (lon, sent["lon"])):
        assert coarse % COARSE_MICRO_DEGREES == 0 and abs(coarse - exact) <= COARSE_MICRO_DEGREES // 2
    assert abs(sent["lat"]) <= 90_000_000 and abs(sent["lon"]) <= 180_000_000
