"""Invariants of the codec: decode never raises, and encode/decode round-trips."""

from __future__ import annotations

import json
import string
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.cart import (
    CartAdd,
    CartRemove,
    CheckoutStarted,
    OrderCompleted,
    OrderLine,
)
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.codec import (
    EVENT_TYPES,
    DecodeError,
    DecodeLimits,
    InboundEvent,
    TopicKind,
    decode,
    encode,
)
from schemas.common import ISO_4217_CODES
from schemas.customers import ConsentChanged, CustomerErased, ProfileAttributes
from schemas.email import (
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
)
from tests.unit.schema_samples import ALL_TYPES, LIMITS, NOW, full, minimal

pytestmark = pytest.mark.unit

ALL_CLASSES = tuple(cls for members in EVENT_TYPES.values() for cls in members.values())


def _check(kind: TopicKind, raw: bytes | None, limits: DecodeLimits = LIMITS) -> None:
    result = decode(kind, raw, now=NOW, limits=limits)
    assert isinstance(result, (*ALL_CLASSES, DecodeError))
    if isinstance(result, DecodeError):
        # The catch-all in decode is a safety net; no input should need it.
        assert not result.detail.startswith("unexpected error"), result
        assert result.detail
        assert len(result.detail) <= 1000
    else:
        assert type(result) in EVENT_TYPES[kind].values()


# --- decode never raises ----------------------------------------------------

kinds = st.sampled_from(TopicKind)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(kind=kinds, raw=st.binary(max_size=4096) | st.none())
def test_decode_never_raises_on_bytes(kind: TopicKind, raw: bytes | None) -> None:
    _check(kind, raw)


@given(kind=kinds, raw=st.binary(max_size=300), limit=st.integers(1, 300))
def test_decode_never_raises_with_tight_limits(kind: TopicKind, raw: bytes, limit: int) -> None:
    _check(kind, raw, DecodeLimits(max_bytes=limit, max_future_skew=timedelta(0)))


def _json(value: Any, ascii_only: bool = False) -> bytes:
    # The stdlib writes what orjson refuses to (integers beyond 64 bits); lone
    # surrogates become \ud800 escapes or, raw, bytes that are not UTF-8.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@given(kind=kinds, value=json_values, ascii_only=st.booleans())
def test_decode_never_raises_on_json(kind: TopicKind, value: Any, ascii_only: bool) -> None:
    _check(kind, _json(value, ascii_only))


@given(
    kind=kinds,
    event_type=st.sampled_from([*ALL_TYPES, "", "unknown"]),
    fields=st.dictionaries(
        st.sampled_from([*sorted({k for t in ALL_TYPES for k in full(t)}), "lines", "extra"]),
        json_values,
        max_size=8,
    ),
)
def test_decode_never_raises_on_typed_objects(
    kind: TopicKind, event_type: str, fields: dict[str, Any]
) -> None:
    _check(kind, _json({**fields, "type": event_type}))


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[TopicKind, bytes]:
    """A valid event with one field replaced, removed or its bytes damaged."""
    event_type = draw(st.sampled_from(ALL_TYPES))
    obj = draw(st.sampled_from([minimal, full]))(event_type)
    key = draw(st.sampled_from(sorted(obj)))
    how = draw(st.sampled_from(["replace", "delete", "bytes"]))
    if how == "replace":
        obj[key] = draw(json_values)
    elif how == "delete":
        del obj[key]
    raw = _json(obj)
    if how == "bytes":
        position = draw(st.integers(0, len(raw) - 1))
        raw = raw[:position] + draw(st.binary(min_size=0, max_size=3)) + raw[position + 1 :]
    return draw(kinds), raw


@given(case=mutated_events())
def test_decode_never_raises_on_mutated_events(case: tuple[TopicKind, bytes]) -> None:
    _check(*case)


# --- round trip ---------------------------------------------------------------

# Printable, no surrounding whitespace: what an id is once validated.
_id_chars = st.characters(categories=["L", "M", "N", "P", "S"])
ids = st.text(_id_chars, min_size=1, max_size=128) | st.from_regex(
    r"\A[a-z0-9]{1,10}( [a-z0-9]{1,10})?\Z"
)
labels = st.text(_id_chars, min_size=1, max_size=512)
texts = st.just("") | labels
money = st.integers(0, 4).flatmap(
    lambda places: st.decimals(
        min_value=0,
        max_value=Decimal("99999999999999"),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )
)
currencies = st.sampled_from(sorted(ISO_4217_CODES))
quantities = st.integers(1, 10_000)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - bounds; the zone is drawn below
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
urls = st.builds(
    "{}://{}.example/{}".format,
    st.sampled_from(["http", "https", "HTTPS"]),
    st.from_regex(r"\A[a-z0-9-]{1,20}\Z"),
    st.text(string.ascii_letters + string.digits + "-_/?=&%.", max_size=100),
)
TIME_ZONES = sorted(zoneinfo.available_timezones())
ROUND_TRIP_NOW = datetime(2200, 1, 1, tzinfo=UTC)


def _events(cls: type[Any], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(
        cls,
        event_id=ids,
        customer_id=ids,
        occurred_at=moments,
        session_id=st.none() | ids,
        **fields,
    )


_line_change = {
    "cart_id": ids,
    "product_id": ids,
    "quantity": quantities,
    "unit_price": money,
    "currency": currencies,
}
_email = {"campaign_id": ids, "message_id": ids}
_value_and_currency: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}), st.fixed_dictionaries({"value": money, "currency": currencies})
)

STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    PageView: _events(PageView, url=urls, referrer=st.none() | urls, title=st.none() | texts),
    ProductView: _events(
        ProductView,
        product_id=ids,
        price=money,
        currency=currencies,
        category=st.none() | labels,
    ),
    CategoryView: _events(CategoryView, category=labels),
    Search: _events(Search, query=labels, results_count=st.none() | st.integers(0, 10**9)),
    CartAdd: _events(CartAdd, **_line_change),
    CartRemove: _events(CartRemove, **_line_change),
    CheckoutStarted: _value_and_currency.flatmap(
        lambda extra: _events(
            CheckoutStarted, cart_id=ids, **{k: st.just(v) for k, v in extra.items()}
        )
    ),
    OrderCompleted: _events(
        OrderCompleted,
        order_id=ids,
        lines=st.lists(
            st.builds(OrderLine, product_id=ids, quantity=quantities, unit_price=money),
            min_size=1,
            max_size=20,
        ).map(tuple),
        total=money,
        currency=currencies,
        cart_id=st.none() | ids,
    ),
    EmailSent: _events(EmailSent, **_email),
    EmailDelivered: _events(EmailDelivered, **_email),
    EmailOpen: _events(EmailOpen, **_email),
    EmailClick: _events(EmailClick, url=st.none() | urls, **_email),
    EmailBounce: _events(EmailBounce, bounce_type=st.sampled_from(["hard", "soft"]), **_email),
    EmailUnsubscribe: _events(EmailUnsubscribe, **_email),
    EmailComplaint: _events(EmailComplaint, **_email),
    ConsentChanged: _events(
        ConsentChanged,
        channel=st.just("email"),
        granted=st.booleans(),
        source=st.none() | labels,
    ),
    CustomerErased: _events(CustomerErased),
    ProfileAttributes: st.one_of(
        _events(
            ProfileAttributes, time_zone=st.sampled_from(sorted(zoneinfo.available_timezones()))
        ),
        _events(
            ProfileAttributes,
            locale=st.sampled_from(["en", "en-US", "pt-BR", "zh-Hant-TW", "es-419", "fil"]),
            time_zone=st.none() | st.just("UTC"),
        ),
    ),
}


def test_every_event_class_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(ALL_CLASSES)


KIND_OF = {cls: kind for kind, members in EVENT_TYPES.items() for cls in members.values()}


@settings(max_examples=50)
@given(data=st.data(), cls=st.sampled_from(sorted(STRATEGIES, key=lambda c: c.__name__)))
def test_encode_then_decode_gives_an_equal_event(data: st.DataObject, cls: type[Any]) -> None:
    event: InboundEvent = data.draw(STRATEGIES[cls])
    raw = encode(event)
    limits = DecodeLimits(max_bytes=len(raw), max_future_skew=timedelta(0))
    decoded = decode(KIND_OF[cls], raw, now=ROUND_TRIP_NOW, limits=limits)
    assert decoded == event
    assert type(decoded) is cls
    assert encode(decoded) == raw  # and the wire form is stable


@given(event=STRATEGIES[OrderCompleted])
def test_money_is_written_as_exact_strings(event: OrderCompleted) -> None:
    wire = orjson.loads(encode(event))
    assert Decimal(wire["total"]) == event.total
    assert isinstance(wire["total"], str)
    assert wire["occurred_at"].endswith("Z")
