"""Constrained field types shared by every event.

Each type here is an ``Annotated`` alias, so one definition gives the same
validation, the same error ``type`` and the same JSON Schema wherever the
field appears. Checks that pydantic cannot express as constraints raise
:class:`pydantic_core.PydanticCustomError` with a stable error type
(``currency_unknown``, ``timezone_aware``...), because dead-letter triage
groups failures by that type.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "ISO_4217_CODES",
    "MAX_ID_CHARS",
    "MAX_QUANTITY",
    "MAX_TEXT_CHARS",
    "MAX_URL_CHARS",
    "Currency",
    "Id",
    "Label",
    "Locale",
    "Money",
    "Quantity",
    "Text",
    "TimeZoneName",
    "UriReference",
    "Url",
    "UtcDatetime",
]

MAX_ID_CHARS: Final = 128
"""Longest identifier accepted: ids are Kafka keys and table keys, keep them small."""

MAX_TEXT_CHARS: Final = 512
"""Longest free text (titles, queries, categories) accepted."""

MAX_URL_CHARS: Final = 2048
"""Longest URL accepted; the de facto limit of browsers and CDNs."""

MAX_QUANTITY: Final = 10_000
"""Largest quantity on one cart or order line; more is a bug or abuse, not a shopper."""

# ISO 4217 list one (SIX Group, maintenance agency), the codes in use as of
# 2025: circulating currencies plus the fund codes (BOV, CHE, CHW, CLF, COU,
# MXV, USN, UYI, UYW). Left out on purpose: precious metals (XAU, XAG, XPD,
# XPT), bond-market units (XBA-XBD), XDR, XSU, XUA, the testing code XTS and
# "no currency" XXX, none of which a shop prices in; and withdrawn codes
# (ANG -> XCG 2025, ZWL -> ZWG 2024, SLL -> SLE, HRK -> EUR 2023, CUC).
# Update this set when ISO publishes an amendment; the tests pin a few codes.
ISO_4217_CODES: Final[frozenset[str]] = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV
    BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP
    CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
    USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
    ZMW ZWG
    """.split()  # noqa: SIM905 - a block of codes reads like the ISO table
)


def _printable(value: str) -> str:
    # str.isprintable() is False for control (Cc), format (Cf, e.g. zero-width
    # joiners and bidi overrides), surrogate, private-use and unassigned code
    # points and for every separator except the ASCII space: the characters
    # that make two ids look equal in a log while being different keys.
    if not value.isprintable():
        raise PydanticCustomError(
            "string_not_printable",
            "String should contain only printable characters (no control or format characters)",
        )
    return value


Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS),
    AfterValidator(_printable),
    Field(description="Identifier: 1-128 printable characters, surrounding whitespace stripped."),
]
"""An identifier (customer, event, product, campaign...)."""

Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_TEXT_CHARS),
    AfterValidator(_printable),
    Field(description="Printable text, at most 512 characters, may be empty."),
]
"""Free text that may be empty, such as a page title."""

Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS),
    AfterValidator(_printable),
    Field(description="Printable text, 1-512 characters."),
]
"""Free text that must say something: a category, a search query, a source."""


def _currency(value: str) -> str:
    if value not in ISO_4217_CODES:
        raise PydanticCustomError(
            "currency_unknown",
            "Currency '{code}' is not an active ISO 4217 code",
            {"code": value},
        )
    return value


Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_currency),
    Field(description="Active ISO 4217 alphabetic code, upper case (e.g. EUR)."),
]
"""An ISO 4217 currency code; the pattern runs first so unknown input is short."""


_ONE: Final = Decimal(1)
_FOUR_PLACES: Final = Decimal("0.0001")


def _canonical_money(value: Decimal) -> Decimal:
    # Store what encode should write: plain digits, at most 4 decimals. "1E+2"
    # becomes 100 and "1.50000" (accepted: its extra zeros are not precision)
    # becomes 1.5000; both quantizations are exact once the digit limits
    # passed. Adding 0 turns -0 into 0 and keeps the scale (1.50 stays 1.50).
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        value = value.quantize(_ONE)
    elif isinstance(exponent, int) and exponent < -4:
        value = value.quantize(_FOUR_PLACES)
    return value + 0


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False),
    AfterValidator(_canonical_money),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$"},
            ],
            "description": (
                "Amount >= 0, at most 18 digits of which 4 decimals: a JSON number or a "
                'decimal string ("19.99"). Nudge writes strings.'
            ),
        },
        mode="validation",
    ),
]
"""A non-negative amount of money.

Both JSON numbers and numeric strings are accepted, and ``encode`` writes a
string. Strings are the only exact form: a JSON number is a binary double in
most parsers (orjson and JavaScript included), so ``0.1 + 0.2`` style errors
and a silent loss past 15 significant digits are built in. Shop platforms
(Shopify's webhooks, for one) send prices as strings for that reason, while
browser trackers naturally send numbers, so both are accepted. This is the one
field where strict mode is relaxed on purpose; booleans and other types are
still rejected.
"""

Quantity = Annotated[
    int,
    Field(ge=1, le=MAX_QUANTITY, description="Units, 1 to 10000."),
]
"""A count of units on a cart or order line (JSON integer only)."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "timezone_aware",
            "Timestamp needs a UTC offset (e.g. 2024-05-01T12:00:00Z); naive timestamps are "
            "ambiguous and rejected",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_out_of_range", "Timestamp is out of range once converted to UTC"
        ) from None


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_utc),
    Field(description="RFC 3339 timestamp with an offset; stored and written in UTC."),
]
"""A timezone-aware timestamp, converted to UTC; naive input is rejected."""


@functools.cache
def _time_zones() -> frozenset[str]:
    # Membership in the installed tz database, read once: cheaper than
    # ZoneInfo(key) per event and never touches the file system with input.
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str:
    if value not in _time_zones():
        raise PydanticCustomError(
            "time_zone_unknown",
            "'{name}' is not an IANA time zone name (e.g. Europe/Paris)",
            {"name": value},
        )
    return value


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_time_zone),
    Field(description="IANA time zone name, e.g. Europe/Paris."),
]
"""An IANA time zone name, checked against the installed tz database."""

_LOCALE = re.compile(
    r"^(?P<lang>[A-Za-z]{2,3})"
    r"(?:[-_](?P<script>[A-Za-z]{4}))?"
    r"(?:[-_](?P<region>[A-Za-z]{2}|[0-9]{3}))?$"
)


def _locale(value: str) -> str:
    match = _LOCALE.fullmatch(value)
    if match is None:
        raise PydanticCustomError(
            "locale_invalid",
            "Locale should be a BCP 47 language[-Script][-REGION] tag, e.g. fr or pt-BR",
        )
    lang, script, region = match.group("lang", "script", "region")
    parts = [lang.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


Locale = Annotated[
    str,
    StringConstraints(min_length=2, max_length=16),
    AfterValidator(_locale),
    Field(
        description=(
            "BCP 47 language[-Script][-REGION] tag; '_' accepted and case normalized "
            "(en_us -> en-US)."
        )
    ),
]
"""A locale tag, normalized to canonical BCP 47 case and hyphens."""


def _url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
        raise PydanticCustomError(
            "url_invalid", "URL should be absolute, with an http or https scheme and a host"
        )
    if any(char.isspace() for char in value):
        raise PydanticCustomError("url_invalid", "URL should not contain whitespace")
    return value


Url = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_CHARS),
    AfterValidator(_printable),
    AfterValidator(_url),
    Field(description="Absolute http(s) URL, at most 2048 characters."),
]
"""An absolute http(s) URL, kept as the string sent (no normalization)."""

UriReference = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_CHARS),
    AfterValidator(_printable),
    Field(description="A referrer as the browser reported it, at most 2048 characters."),
]
"""A loosely checked URI: referrers include android-app:// and empty values."""
