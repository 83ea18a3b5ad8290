"""Money and coordinates from channel text to the ledger's exact integers, never through a float.

A channel sends amounts as decimal strings (`"19.99"`); the ledger keeps
integer minor units of the currency (`1999` cents). `parse_amount` reads the
string with `decimal`, scales it by the currency's exponent (ISO 4217: 2 for
EUR, 0 for JPY, 3 for KWD) and refuses anything it cannot carry exactly: more
precision than the currency has (`"19.995"` EUR), exponents, signs where
none belong, NaN. Trailing zeros are exact and accepted (`"19.990"` EUR is
1999). Coordinates are read the same way into micro-degrees, rounded to the nearest.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal


def iso_codes(text: str) -> frozenset[str]:
    """Currency codes written one after another, separated by white space."""
    return frozenset(text.split())


ZERO_DECIMALS = iso_codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF")
"""ISO 4217 currencies without minor units."""

THREE_DECIMALS = iso_codes("BHD IQD JOD KWD LYD OMR TND")
"""ISO 4217 currencies of a thousandth."""

FOUR_DECIMALS = iso_codes("CLF UYW")
"""ISO 4217 units of account of a ten-thousandth."""

TWO_DECIMALS = iso_codes(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF
    CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD
    HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG
    SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST
    XCD YER ZAR ZMW ZWG"""
)
"""ISO 4217 currencies of a hundredth."""

DECIMAL_TEXT = re.compile(r"-?[0-9]{1,13}(\.[0-9]{1,12})?")
"""A plain decimal number as channels write amounts: digits, an optional point and digits; no exponent (at
most 25 digits, within `decimal`'s default precision of 28, so no step rounds)."""


class AmountError(ValueError):
    """A text that is not an exact amount of its currency (or not a coordinate)."""


def get_exponent(currency: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency; `AmountError` for any other code."""
    for exponent, codes in ((2, TWO_DECIMALS), (0, ZERO_DECIMALS), (3, THREE_DECIMALS), (4, FOUR_DECIMALS)):
        if currency in codes:
            return exponent
    raise AmountError(f"unknown currency {currency!r} (not an ISO 4217 code)")


def parse_decimal(text: object, what: str) -> Decimal:
    """A decimal string as a `Decimal`, exactly as written."""
    if type(text) is not str or not DECIMAL_TEXT.fullmatch(text):
        raise AmountError(f'{what} must be a decimal string such as "19.99", not {text!r}')
    return Decimal(text)


def scale_exactly(value: Decimal, exponent: int, what: str) -> int:
    """`value` x 10^exponent as an integer, if that is exact."""
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{what} {value} has more precision than {exponent} decimal places")
    return int(scaled)


def parse_amount(text: object, currency: str, what: str = "amount") -> int:
    """A non-negative decimal string of `currency` as exact integer minor units (`"19.99"` EUR -> 1999)."""
    value = parse_decimal(text, what)
    if value < 0:
        raise AmountError(f"{what} must not be negative: {text!r}")
    return scale_exactly(value, get_exponent(currency), what)


def format_amount(minor: int, currency: str) -> str:
    """Integer minor units as the decimal string a channel writes (1999 EUR -> `"19.99"`)."""
    exponent = get_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def parse_degrees(value: object, what: str) -> int:
    """A latitude or longitude (decimal string, or JSON number read as a `Decimal`) in micro-degrees, rounded
    half to even (a micro-degree is about 0.1 m: a place, unlike money, may be rounded)."""
    if isinstance(value, Decimal) and value.is_finite():
        value = format(value, "f")
    elif type(value) is int:
        value = str(value)
    micro = parse_decimal(value, what).scaleb(6).to_integral_value(rounding=ROUND_HALF_EVEN)
    return int(micro)
