"""Channel amounts to exact integer minor units: every decimal string of a currency's precision round-trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.money import (
    FOUR_DECIMALS,
    THREE_DECIMALS,
    TWO_DECIMALS,
    ZERO_DECIMALS,
    AmountError,
    format_amount,
    get_exponent,
    parse_amount,
    parse_degrees,
)

CURRENCIES = sorted(TWO_DECIMALS | ZERO_DECIMALS | THREE_DECIMALS | FOUR_DECIMALS)


@st.composite
def amount_texts(draw: st.DrawFn) -> tuple[str, str, int]:
    """A currency, a decimal string with at most its number of decimals, and the minor units it means."""
    currency = draw(st.sampled_from(CURRENCIES))
    exponent = get_exponent(currency)
    whole = draw(st.integers(0, 10**12 // 10**exponent))
    places = draw(st.integers(0, exponent))
    fraction = draw(st.integers(0, 10**places - 1)) if places else 0
    text = str(whole) if places == 0 else f"{whole}.{fraction:0{places}d}"
    return currency, text, whole * 10**exponent + fraction * 10 ** (exponent - places)


@given(amount_texts())
def test_every_decimal_string_of_the_currency_precision_is_read_exactly(case: tuple[str, str, int]) -> None:
    currency, text, minor = case
    assert parse_amount(text, currency) == minor
    assert Decimal(format_amount(minor, currency)) == Decimal(text)
    assert parse_amount(format_amount(minor, currency), currency) == minor


@given(st.sampled_from(CURRENCIES), st.integers(0, 10**12))
def test_minor_units_round_trip_through_text(currency: str, minor: int) -> None:
    assert parse_amount(format_amount(minor, currency), currency) == minor


@given(st.sampled_from(CURRENCIES), st.integers(0, 10**9), st.integers(1, 9))
def test_more_precision_than_the_currency_has_is_refused(currency: str, whole: int, digit: int) -> None:
    text = f"{whole}." + "0" * get_exponent(currency) + str(digit)
    with pytest.raises(AmountError, match="more precision"):
        parse_amount(text, currency)


def test_known_amounts() -> None:
    assert parse_amount("19.99", "EUR") == 1999
    assert parse_amount("19.990", "EUR") == 1999
    assert parse_amount("1000", "JPY") == 1000
    assert parse_amount("1.234", "KWD") == 1234
    assert parse_amount("0.1", "EUR") == 10
    assert format_amount(5, "EUR") == "0.05"
    assert format_amount(1000, "JPY") == "1000"


@pytest.mark.parametrize(
    "text", ["19.999", "1e3", "NaN", "-1.00", "19,99", " 19.99", "", "1.", ".5", 19.99, 1999, None]
)
def test_anything_but_an_exact_plain_decimal_string_is_refused(text: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(text, "EUR")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(AmountError, match="unknown currency"):
        parse_amount("1.00", "XYZ")
    with pytest.raises(AmountError):
        parse_amount("1", "eur")


def test_coordinates_are_micro_degrees_without_floats() -> None:
    assert parse_degrees("38.7223", "lat") == 38_722_300
    assert parse_degrees(Decimal("-9.1393"), "lon") == -9_139_300
    assert parse_degrees(Decimal("45.42152967"), "lat") == 45_421_530
    assert parse_degrees(12, "lon") == 12_000_000
    with pytest.raises(AmountError):
        parse_degrees(1.5, "lat")
