"""What decode accepts and rejects, one table row per case, for every event type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from pydantic import ValidationError

from schemas.cart import CartAdd, OrderCompleted
from schemas.clickstream import PageView, ProductView
from schemas.codec import (
    EVENT_TYPES,
    MAX_FIELD_ERRORS,
    DecodeError,
    DecodeLimits,
    DecodeReason,
    TopicKind,
    decode,
)
from schemas.common import ISO_4217_CODES
from schemas.customers import ProfileAttributes
from tests.unit.schema_samples import (
    ALL_TYPES,
    CLASS_OF,
    LIMITS,
    MINIMAL,
    NOW,
    SKEW,
    TOPIC_OF,
    dumps,
    envelope,
    full,
    minimal,
)

pytestmark = pytest.mark.unit


def _decode(event_type: str, obj: Any, kind: TopicKind | None = None) -> Any:
    return decode(kind or TOPIC_OF[event_type], dumps(obj), now=NOW, limits=LIMITS)


def _error(result: object) -> DecodeError:
    assert isinstance(result, DecodeError), f"expected a DecodeError, got {result!r}"
    return result


# --- accepted ---------------------------------------------------------------


@pytest.mark.parametrize("sample", [minimal, full], ids=["minimal", "full"])
@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_valid_event_decodes_to_its_class(event_type: str, sample: Any) -> None:
    obj = sample(event_type)
    event = _decode(event_type, obj)
    assert type(event) is CLASS_OF[event_type]
    assert event.type == event_type
    assert (event.event_id, event.customer_id) == ("evt-1", "cus-1")
    assert event.occurred_at == datetime(2024, 5, 1, 11, 59, tzinfo=UTC)
    assert event.schema_version == 1
    assert event.session_id == obj.get("session_id")


def test_every_topic_has_samples_and_no_type_is_on_two_topics() -> None:
    tags = [tag for members in EVENT_TYPES.values() for tag in members]
    assert len(tags) == len(set(tags)) == len(MINIMAL)


def _ok(event_type: str, **changes: Any) -> Any:
    return {**minimal(event_type), **changes}


class Accept(NamedTuple):
    obj: dict[str, Any]
    field: str
    expected: Any


ACCEPTS = {
    "offset timestamp converted to UTC": Accept(
        _ok("page_view", occurred_at="2024-05-01T13:59:00+02:00"),
        "occurred_at",
        datetime(2024, 5, 1, 11, 59, tzinfo=UTC),
    ),
    "timestamp with fraction": Accept(
        _ok("page_view", occurred_at="2024-05-01T11:59:00.123456Z"),
        "occurred_at",
        datetime(2024, 5, 1, 11, 59, 0, 123456, tzinfo=UTC),
    ),
    "timestamp exactly at the skew limit": Accept(
        _ok("page_view", occurred_at=(NOW + SKEW).isoformat()), "occurred_at", NOW + SKEW
    ),
    "timestamp far in the past": Accept(
        _ok("page_view", occurred_at="2001-01-01T00:00:00Z"),
        "occurred_at",
        datetime(2001, 1, 1, tzinfo=UTC),
    ),
    "price as JSON number": Accept(_ok("product_view", price=19.99), "price", Decimal("19.99")),
    "price as integer": Accept(_ok("product_view", price=20), "price", Decimal(20)),
    "price as string keeps the scale": Accept(
        _ok("product_view", price="19.90"), "price", Decimal("19.90")
    ),
    "price zero": Accept(_ok("product_view", price=0), "price", Decimal(0)),
    "price in exponent form normalized": Accept(
        _ok("product_view", price="1E+2"), "price", Decimal(100)
    ),
    "price 18 digits as a string is exact": Accept(
        _ok("product_view", price="12345678901234.1234"),
        "price",
        Decimal("12345678901234.1234"),
    ),
    "price trailing zeros beyond 4 places": Accept(
        _ok("product_view", price="1.500000"), "price", Decimal("1.5")
    ),
    "ids stripped": Accept(_ok("page_view", customer_id="  cus-1 "), "customer_id", "cus-1"),
    "id of 128 characters": Accept(_ok("page_view", event_id="e" * 128), "event_id", "e" * 128),
    "unicode id": Accept(
        _ok("page_view", customer_id="kunde-ü-客户"), "customer_id", "kunde-ü-客户"
    ),
    "unknown fields ignored": Accept(
        _ok("page_view", utm_source="x", nested={"a": [1]}), "type", "page_view"
    ),
    "fund currency code": Accept(_ok("product_view", currency="CLF"), "currency", "CLF"),
    "new currency code XCG": Accept(_ok("product_view", currency="XCG"), "currency", "XCG"),
    "locale with underscore normalized": Accept(
        _ok("profile_attributes", locale="pt_br"), "locale", "pt-BR"
    ),
    "locale with script": Accept(
        _ok("profile_attributes", locale="zh-hant-tw"), "locale", "zh-Hant-TW"
    ),
    "locale with numeric region": Accept(
        _ok("profile_attributes", locale="es-419"), "locale", "es-419"
    ),
    "time zone only": Accept(
        {**envelope("profile_attributes"), "time_zone": "America/Argentina/Buenos_Aires"},
        "time_zone",
        "America/Argentina/Buenos_Aires",
    ),
    "consent withdrawn": Accept(_ok("consent_changed", granted=False), "granted", False),
    "order total differs from line sum": Accept(
        _ok("order_completed", total="0"), "total", Decimal(0)
    ),
    "order with repeated product": Accept(
        _ok(
            "order_completed",
            lines=[{"product_id": "p", "quantity": 1, "unit_price": 1}] * 2,
        ),
        "lines",
        2,
    ),
    "order with 500 lines": Accept(
        _ok(
            "order_completed",
            lines=[{"product_id": f"p{i}", "quantity": 1, "unit_price": 1} for i in range(500)],
        ),
        "lines",
        500,
    ),
    "quantity at the bound": Accept(_ok("cart_add", quantity=10_000), "quantity", 10_000),
    "search with zero results": Accept(_ok("search", results_count=0), "results_count", 0),
    "soft bounce": Accept(_ok("email_bounce", bounce_type="soft"), "bounce_type", "soft"),
    "empty page title": Accept(_ok("page_view", title=""), "title", ""),
}


@pytest.mark.parametrize("case", ACCEPTS.values(), ids=ACCEPTS.keys())
def test_accepts(case: Accept) -> None:
    event = _decode(case.obj["type"], case.obj)
    assert not isinstance(event, DecodeError), event
    value = getattr(event, case.field)
    if case.field == "lines":
        value = len(value)
    assert value == case.expected


def test_occurred_at_is_stored_in_utc() -> None:
    event = _decode("page_view", _ok("page_view", occurred_at="2024-05-01T13:59:00+02:00"))
    assert isinstance(event, PageView)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_order_line_fields() -> None:
    event = _decode("order_completed", minimal("order_completed"))
    assert isinstance(event, OrderCompleted)
    (line,) = event.lines
    assert (line.product_id, line.quantity, line.unit_price) == ("sku-1", 2, Decimal("10.00"))
    assert isinstance(event.lines, tuple)


def test_models_are_frozen() -> None:
    event = _decode("cart_add", minimal("cart_add"))
    assert isinstance(event, CartAdd)
    with pytest.raises(ValidationError, match="frozen"):
        event.quantity = 3  # type: ignore[misc]


def test_without_context_the_future_check_is_skipped() -> None:
    raw = dumps(_ok("product_view", occurred_at="2999-01-01T00:00:00Z"))
    assert ProductView.model_validate_json(raw).occurred_at.year == 2999


def test_python_construction_needs_no_type() -> None:
    event = ProfileAttributes(
        event_id="e", customer_id="c", occurred_at=NOW, time_zone="Asia/Tokyo"
    )
    assert event.type == "profile_attributes"


def test_currency_list_pins_known_codes() -> None:
    assert {"EUR", "USD", "JPY", "GBP", "CHF", "XOF", "ZWG", "SLE", "VED"} <= ISO_4217_CODES
    assert not {"XXX", "XTS", "XAU", "HRK", "ANG", "ZWL", "SLL", "ABC"} & ISO_4217_CODES
    assert all(len(code) == 3 and code.isupper() for code in ISO_4217_CODES)


# --- rejected: fields -------------------------------------------------------


class Reject(NamedTuple):
    obj: dict[str, Any]
    loc: str
    error_type: str


def _missing_cases() -> dict[str, Reject]:
    cases = {}
    for event_type in ALL_TYPES:
        required = [k for k in minimal(event_type) if k != "type"]
        if event_type == "profile_attributes":
            required.remove("locale")  # one of two optional fields: "profile attributes empty"
        for field in required:
            obj = minimal(event_type)
            del obj[field]
            cases[f"{event_type} without {field}"] = Reject(obj, field, "missing")
    return cases


def _wrong_type_cases() -> dict[str, Reject]:
    cases = {}
    for event_type in ALL_TYPES:
        cases[f"{event_type} numeric customer_id"] = Reject(
            _ok(event_type, customer_id=42), "customer_id", "string_type"
        )
        cases[f"{event_type} null event_id"] = Reject(
            _ok(event_type, event_id=None), "event_id", "string_type"
        )
        cases[f"{event_type} numeric occurred_at"] = Reject(
            _ok(event_type, occurred_at=1714564740), "occurred_at", "datetime_type"
        )
        cases[f"{event_type} naive occurred_at"] = Reject(
            _ok(event_type, occurred_at="2024-05-01T11:59:00"), "occurred_at", "timezone_aware"
        )
        for field, value in MINIMAL[event_type].items():
            wrong: Any = [value] if not isinstance(value, list) else {"x": value}
            expected = {
                "lines": "tuple_type",
                "granted": "bool_type",
                "quantity": "int_type",
                "unit_price": "decimal_type",
                "price": "decimal_type",
                "total": "decimal_type",
            }.get(field, "string_type")
            if field in ("channel", "bounce_type"):
                expected = "literal_error"
            cases[f"{event_type} {field} of the wrong JSON type"] = Reject(
                _ok(event_type, **{field: wrong}), field, expected
            )
    return cases


FIELD_REJECTS: dict[str, Reject] = {
    **_missing_cases(),
    **_wrong_type_cases(),
    "negative price": Reject(_ok("product_view", price=-0.01), "price", "greater_than_equal"),
    "negative price string": Reject(_ok("product_view", price="-1"), "price", "greater_than_equal"),
    "negative unit_price": Reject(
        _ok("cart_add", unit_price=-1), "unit_price", "greater_than_equal"
    ),
    "negative total": Reject(_ok("order_completed", total=-5), "total", "greater_than_equal"),
    "negative checkout value": Reject(
        _ok("checkout_started", value="-1", currency="EUR"), "value", "greater_than_equal"
    ),
    "price true": Reject(_ok("product_view", price=True), "price", "decimal_type"),
    "price NaN string": Reject(_ok("product_view", price="NaN"), "price", "finite_number"),
    "price Infinity string": Reject(
        _ok("product_view", price="Infinity"), "price", "finite_number"
    ),
    "price with 5 decimals": Reject(
        _ok("product_view", price="1.00001"), "price", "decimal_max_places"
    ),
    "price with 19 digits": Reject(
        _ok("product_view", price="1234567890123456789"), "price", "decimal_max_digits"
    ),
    "price not a number": Reject(_ok("product_view", price="12,50"), "price", "decimal_parsing"),
    "quantity 0": Reject(_ok("cart_add", quantity=0), "quantity", "greater_than_equal"),
    "quantity negative": Reject(_ok("cart_remove", quantity=-1), "quantity", "greater_than_equal"),
    "quantity over bound": Reject(_ok("cart_add", quantity=10_001), "quantity", "less_than_equal"),
    "quantity as string": Reject(_ok("cart_add", quantity="3"), "quantity", "int_type"),
    "quantity true": Reject(_ok("cart_add", quantity=True), "quantity", "int_type"),
    "quantity float": Reject(_ok("cart_add", quantity=2.5), "quantity", "int_type"),
    "quantity 2.0": Reject(_ok("cart_add", quantity=2.0), "quantity", "int_type"),
    "line quantity 0": Reject(
        _ok(
            "order_completed",
            lines=[
                {"product_id": "a", "quantity": 1, "unit_price": 1},
                {"product_id": "b", "quantity": 0, "unit_price": 1},
            ],
        ),
        "lines.1.quantity",
        "greater_than_equal",
    ),
    "line without product": Reject(
        _ok("order_completed", lines=[{"quantity": 1, "unit_price": 1}]),
        "lines.0.product_id",
        "missing",
    ),
    "order without lines": Reject(_ok("order_completed", lines=[]), "lines", "too_short"),
    "order with 501 lines": Reject(
        _ok(
            "order_completed",
            lines=[{"product_id": f"p{i}", "quantity": 1, "unit_price": 1} for i in range(501)],
        ),
        "lines",
        "too_long",
    ),
    "currency lower case": Reject(
        _ok("product_view", currency="usd"), "currency", "string_pattern_mismatch"
    ),
    "currency four letters": Reject(
        _ok("cart_add", currency="XXXX"), "currency", "string_pattern_mismatch"
    ),
    "currency not ISO": Reject(
        _ok("order_completed", currency="ABC"), "currency", "currency_unknown"
    ),
    "currency withdrawn": Reject(
        _ok("product_view", currency="HRK"), "currency", "currency_unknown"
    ),
    "currency XXX": Reject(_ok("product_view", currency="XXX"), "currency", "currency_unknown"),
    "checkout value without currency": Reject(
        _ok("checkout_started", value="10"), "", "value_without_currency"
    ),
    "checkout currency without value": Reject(
        _ok("checkout_started", currency="EUR"), "", "value_without_currency"
    ),
    "empty id": Reject(_ok("page_view", event_id=""), "event_id", "string_too_short"),
    "blank id": Reject(_ok("page_view", customer_id="   "), "customer_id", "string_too_short"),
    "over-long id": Reject(_ok("page_view", event_id="e" * 129), "event_id", "string_too_long"),
    "over-long product id": Reject(
        _ok("cart_add", product_id="p" * 129), "product_id", "string_too_long"
    ),
    "id with control character": Reject(
        _ok("page_view", customer_id="cus\x001"), "customer_id", "string_not_printable"
    ),
    "id with zero-width space": Reject(
        _ok("page_view", customer_id="cus\u200b1"), "customer_id", "string_not_printable"
    ),
    "empty session id": Reject(_ok("page_view", session_id=""), "session_id", "string_too_short"),
    "empty campaign id": Reject(
        _ok("email_open", campaign_id=""), "campaign_id", "string_too_short"
    ),
    "naive timestamp with space": Reject(
        _ok("cart_add", occurred_at="2024-05-01 11:59:00"), "occurred_at", "timezone_aware"
    ),
    "date only": Reject(
        _ok("page_view", occurred_at="2024-05-01"), "occurred_at", "datetime_parsing"
    ),
    "timestamp not a date": Reject(
        _ok("page_view", occurred_at="yesterday"), "occurred_at", "datetime_parsing"
    ),
    "timestamp beyond the skew": Reject(
        _ok("page_view", occurred_at=(NOW + SKEW + timedelta(microseconds=1)).isoformat()),
        "occurred_at",
        "datetime_too_far_in_future",
    ),
    "timestamp next year": Reject(
        _ok("email_open", occurred_at="2025-05-01T12:00:00Z"),
        "occurred_at",
        "datetime_too_far_in_future",
    ),
    "timestamp overflowing UTC": Reject(
        _ok("page_view", occurred_at="0001-01-01T00:00:00+01:00"),
        "occurred_at",
        "datetime_out_of_range",
    ),
    "schema_version 2": Reject(
        _ok("page_view", schema_version=2), "schema_version", "schema_version_unsupported"
    ),
    "schema_version 0": Reject(
        _ok("cart_add", schema_version=0), "schema_version", "schema_version_unsupported"
    ),
    "schema_version true": Reject(
        _ok("page_view", schema_version=True), "schema_version", "int_type"
    ),
    "schema_version string": Reject(
        _ok("page_view", schema_version="1"), "schema_version", "int_type"
    ),
    "url without scheme": Reject(_ok("page_view", url="shop.example/x"), "url", "url_invalid"),
    "javascript url": Reject(_ok("page_view", url="javascript:alert(1)"), "url", "url_invalid"),
    "url without host": Reject(_ok("page_view", url="https:///x"), "url", "url_invalid"),
    "url with space": Reject(_ok("page_view", url="https://a.example/x y"), "url", "url_invalid"),
    "over-long url": Reject(
        _ok("page_view", url="https://a.example/" + "x" * 2048), "url", "string_too_long"
    ),
    "click url relative": Reject(_ok("email_click", url="/sale"), "url", "url_invalid"),
    "empty search": Reject(_ok("search", query=" "), "query", "string_too_short"),
    "negative results count": Reject(
        _ok("search", results_count=-1), "results_count", "greater_than_equal"
    ),
    "empty category": Reject(_ok("category_view", category=""), "category", "string_too_short"),
    "over-long title": Reject(_ok("page_view", title="t" * 513), "title", "string_too_long"),
    "bounce type unknown": Reject(
        _ok("email_bounce", bounce_type="medium"), "bounce_type", "literal_error"
    ),
    "consent channel sms": Reject(
        _ok("consent_changed", channel="sms"), "channel", "literal_error"
    ),
    "consent granted as string": Reject(
        _ok("consent_changed", granted="true"), "granted", "bool_type"
    ),
    "consent granted as 1": Reject(_ok("consent_changed", granted=1), "granted", "bool_type"),
    "profile attributes empty": Reject(envelope("profile_attributes"), "", "no_attributes"),
    "profile attributes nulls": Reject(
        {**envelope("profile_attributes"), "locale": None, "time_zone": None}, "", "no_attributes"
    ),
    "time zone unknown": Reject(
        _ok("profile_attributes", time_zone="Mars/Olympus"), "time_zone", "time_zone_unknown"
    ),
    "time zone directory": Reject(
        _ok("profile_attributes", time_zone="America"), "time_zone", "time_zone_unknown"
    ),
    "time zone path": Reject(
        _ok("profile_attributes", time_zone="../../etc/passwd"), "time_zone", "time_zone_unknown"
    ),
    "locale invalid": Reject(
        _ok("profile_attributes", locale="english"), "locale", "locale_invalid"
    ),
    "locale over-long": Reject(
        _ok("profile_attributes", locale="en-" + "x" * 20), "locale", "string_too_long"
    ),
}


@pytest.mark.parametrize("case", FIELD_REJECTS.values(), ids=FIELD_REJECTS.keys())
def test_rejects_field(case: Reject) -> None:
    event_type = case.obj["type"]
    error = _error(_decode(event_type, case.obj))
    assert error.reason is DecodeReason.validation_failed
    assert error.event_type == event_type
    assert len(error.errors) == 1, error.errors
    (field_error,) = error.errors
    assert (field_error.loc, field_error.type) == (case.loc, case.error_type)
    where = f"field '{case.loc}'" if case.loc else "event"
    assert error.detail == f"{where}: {field_error.msg}"


def test_several_errors_are_all_listed_and_counted() -> None:
    obj = _ok("cart_add", quantity=0, unit_price=-1, currency="usd")
    error = _error(_decode("cart_add", obj))
    assert [e.loc for e in error.errors] == ["quantity", "unit_price", "currency"]
    assert error.detail.startswith("field 'quantity': ")
    assert error.detail.endswith("(and 2 more errors)")


def test_field_errors_are_bounded() -> None:
    lines = [{"product_id": "", "quantity": 0, "unit_price": -1} for _ in range(100)]
    error = _error(_decode("order_completed", _ok("order_completed", lines=lines)))
    assert len(error.errors) == MAX_FIELD_ERRORS
    assert error.detail.endswith("(and 299 more errors)")


def test_errors_do_not_echo_the_input() -> None:
    error = _error(_decode("page_view", _ok("page_view", customer_id="secret@example.com" * 20)))
    assert "secret" not in error.detail
    assert all("secret" not in e.msg for e in error.errors)


# --- rejected: before the fields --------------------------------------------


class Early(NamedTuple):
    kind: TopicKind
    raw: bytes | None
    reason: DecodeReason
    detail: str
    event_type: str | None = None


_BIG = dumps({**minimal("page_view"), "title": "x" * 500, "padding": "p" * (1 << 20)})

EARLY_REJECTS = {
    "None": Early(TopicKind.cart, None, DecodeReason.empty, "null"),
    "empty bytes": Early(TopicKind.cart, b"", DecodeReason.empty, "empty"),
    "1 MiB over max_bytes": Early(
        TopicKind.clickstream, _BIG, DecodeReason.too_large, "limit is 65536"
    ),
    "too large is checked before UTF-8": Early(
        TopicKind.email, b"\xff" * 70_000, DecodeReason.too_large, "70000 bytes"
    ),
    "not UTF-8": Early(TopicKind.cart, b'{"type": "\xff"}', DecodeReason.not_utf8, "byte 10"),
    "UTF-16": Early(TopicKind.cart, '{"type": 1}'.encode("utf-16"), DecodeReason.not_utf8, "UTF-8"),
    "truncated UTF-8": Early(TopicKind.email, "é".encode()[:1], DecodeReason.not_utf8, "UTF-8"),
    "invalid JSON": Early(TopicKind.email, b'{"type": ', DecodeReason.invalid_json, "invalid JSON"),
    "whitespace only": Early(TopicKind.email, b"   ", DecodeReason.invalid_json, "invalid JSON"),
    "trailing garbage": Early(TopicKind.email, b"{} x", DecodeReason.invalid_json, "invalid JSON"),
    "NaN literal": Early(
        TopicKind.cart,
        b'{"type": "cart_add", "unit_price": NaN}',
        DecodeReason.invalid_json,
        "JSON",
    ),
    "JSON array": Early(TopicKind.cart, b"[1, 2]", DecodeReason.not_an_object, "an array"),
    "JSON string": Early(TopicKind.cart, b'"cart_add"', DecodeReason.not_an_object, "a string"),
    "JSON null": Early(TopicKind.cart, b"null", DecodeReason.not_an_object, "null"),
    "JSON number": Early(TopicKind.cart, b"3", DecodeReason.not_an_object, "a number"),
    "array of events": Early(
        TopicKind.cart, dumps([minimal("cart_add")]), DecodeReason.not_an_object, "an array"
    ),
    "nesting 5000 deep": Early(
        TopicKind.clickstream, b"[" * 5000 + b"]" * 5000, DecodeReason.invalid_json, "depth"
    ),
    "object nesting 5000 deep in a field": Early(
        TopicKind.clickstream,
        b'{"type": "page_view", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
        DecodeReason.invalid_json,
        "depth",
    ),
    "nesting 300 deep in an ignored field": Early(
        TopicKind.clickstream,
        dumps(minimal("page_view"))[:-1] + b', "x": ' + b"[" * 300 + b"]" * 300 + b"}",
        DecodeReason.invalid_json,
        "recursion limit",
        "page_view",
    ),
    "huge integer price": Early(
        TopicKind.clickstream,
        dumps(minimal("product_view")).replace(b"19.99", b"1" + b"0" * 400),
        DecodeReason.invalid_json,
        "number",
    ),
    "unknown type": Early(
        TopicKind.clickstream,
        dumps(_ok("page_view", type="pageview")),
        DecodeReason.unknown_type,
        "page_view, product_view",
        "pageview",
    ),
    "missing type": Early(
        TopicKind.email,
        dumps({k: v for k, v in minimal("email_open").items() if k != "type"}),
        DecodeReason.unknown_type,
        "field 'type' is missing",
    ),
    "null type": Early(
        TopicKind.email, dumps(_ok("email_open", type=None)), DecodeReason.unknown_type, "missing"
    ),
    "numeric type": Early(
        TopicKind.email, dumps(_ok("email_open", type=3)), DecodeReason.unknown_type, "a number"
    ),
    "type with different case": Early(
        TopicKind.email,
        dumps(_ok("email_open", type="Email_Open")),
        DecodeReason.unknown_type,
        "'Email_Open'",
        "Email_Open",
    ),
    **{
        f"{event_type} on the wrong topic": Early(
            next(k for k in TopicKind if k != TOPIC_OF[event_type]),
            dumps(minimal(event_type)),
            DecodeReason.wrong_topic,
            f"belong on the {TOPIC_OF[event_type]} topic",
            event_type,
        )
        for event_type in ALL_TYPES
    },
}


@pytest.mark.parametrize("case", EARLY_REJECTS.values(), ids=EARLY_REJECTS.keys())
def test_rejects_message(case: Early) -> None:
    error = _error(decode(case.kind, case.raw, now=NOW, limits=LIMITS))
    assert error.reason is case.reason
    assert case.detail in error.detail
    assert error.event_type == case.event_type
    if case.reason in (DecodeReason.unknown_type, DecodeReason.wrong_topic):
        assert [e.loc for e in error.errors] == ["type"]
        assert "'type'" in error.detail


def test_unknown_type_lists_the_topics_types() -> None:
    error = _error(decode(TopicKind.customers, dumps({"type": "x"}), now=NOW, limits=LIMITS))
    assert error.detail.endswith("consent_changed, customer_erased, profile_attributes")


def test_too_large_counts_bytes_not_characters() -> None:
    obj = _ok("page_view", title="é" * 400)
    raw = dumps(obj)
    limits = DecodeLimits(max_bytes=len(raw) - 1, max_future_skew=SKEW)
    assert _error(decode(TopicKind.clickstream, raw, now=NOW, limits=limits)).reason is (
        DecodeReason.too_large
    )
    limits = DecodeLimits(max_bytes=len(raw), max_future_skew=SKEW)
    assert isinstance(decode(TopicKind.clickstream, raw, now=NOW, limits=limits), PageView)


def test_long_type_tag_is_clipped() -> None:
    error = _error(decode(TopicKind.cart, dumps({"type": "t" * 5000}), now=NOW, limits=LIMITS))
    assert error.event_type is not None
    assert len(error.event_type) <= 128
    assert len(error.detail) <= 1000


def test_zero_skew_rejects_any_future_timestamp() -> None:
    limits = DecodeLimits(max_bytes=4096, max_future_skew=timedelta(0))
    at_now = dumps(_ok("page_view", occurred_at=NOW.isoformat()))
    assert isinstance(decode(TopicKind.clickstream, at_now, now=NOW, limits=limits), PageView)
    later = dumps(_ok("page_view", occurred_at="2024-05-01T12:00:00.000001Z"))
    assert _error(decode(TopicKind.clickstream, later, now=NOW, limits=limits)).errors[0].type == (
        "datetime_too_far_in_future"
    )


def test_now_with_another_offset_is_compared_as_an_instant() -> None:
    paris = datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone()
    raw = dumps(_ok("page_view", occurred_at="2024-05-01T12:04:00Z"))
    assert isinstance(decode(TopicKind.clickstream, raw, now=paris, limits=LIMITS), PageView)


def test_naive_now_is_a_decode_error_not_an_exception() -> None:
    error = _error(
        decode(
            TopicKind.clickstream,
            dumps(minimal("page_view")),
            now=datetime(2024, 5, 1, 12, 0),  # noqa: DTZ001 - the mistake under test
            limits=LIMITS,
        )
    )
    assert error.reason is DecodeReason.validation_failed
    assert error.detail.startswith("unexpected error")


def test_memoryview_and_bytearray_are_accepted() -> None:
    raw = dumps(minimal("search"))
    for value in (bytearray(raw), memoryview(raw)):
        assert decode(TopicKind.clickstream, value, now=NOW, limits=LIMITS) == decode(  # type: ignore[arg-type]
            TopicKind.clickstream, raw, now=NOW, limits=LIMITS
        )


@pytest.mark.parametrize(
    ("max_bytes", "skew"),
    [(0, timedelta(0)), (-1, timedelta(0)), (10, timedelta(seconds=-1))],
    ids=["zero bytes", "negative bytes", "negative skew"],
)
def test_decode_limits_reject_nonsense(max_bytes: int, skew: timedelta) -> None:
    with pytest.raises(ValueError, match="must"):
        DecodeLimits(max_bytes=max_bytes, max_future_skew=skew)
