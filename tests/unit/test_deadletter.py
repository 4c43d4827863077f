"""Dead letters keep the raw bytes exactly and survive a JSON round trip."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
import pytest
from pydantic import ValidationError

from schemas.clickstream import PageView
from schemas.codec import DecodeError, DecodeReason, TopicKind, decode
from schemas.deadletter import (
    MAX_DETAIL_CHARS,
    DeadLetter,
    DeadLetterReason,
    SourceMessage,
    dead_letter_for_key_mismatch,
    dead_letter_from_error,
    dead_letter_from_exception,
    key_matches,
)
from tests.unit.schema_samples import LIMITS, NOW, dumps, minimal

pytestmark = pytest.mark.unit

MESSAGE_AT = datetime(2024, 5, 1, 11, 59, 30, tzinfo=UTC)
DEAD_AT = NOW + timedelta(seconds=1)


class Bad(NamedTuple):
    kind: TopicKind
    value: bytes | None


# One message per decode reason; raw values include bytes that are not UTF-8.
BAD_MESSAGES = {
    DecodeReason.empty: Bad(TopicKind.cart, None),
    DecodeReason.too_large: Bad(TopicKind.cart, b"\xff\x00" * 40_000),
    DecodeReason.not_utf8: Bad(TopicKind.cart, b'{"type": "cart_add\xc3\x28"}'),
    DecodeReason.invalid_json: Bad(TopicKind.email, b'{"type": "email_open",'),
    DecodeReason.not_an_object: Bad(TopicKind.email, b"[]"),
    DecodeReason.unknown_type: Bad(TopicKind.customers, b'{"type": "nope"}'),
    DecodeReason.wrong_topic: Bad(TopicKind.customers, dumps(minimal("page_view"))),
    DecodeReason.validation_failed: Bad(
        TopicKind.cart, dumps({**minimal("cart_add"), "quantity": 0, "currency": "usd"})
    ),
}


def _letter(error: DecodeError, value: bytes | None, key: bytes | None = b"cus-1") -> DeadLetter:
    return dead_letter_from_error(
        error,
        SourceMessage(
            topic="shop.cart",
            partition=3,
            offset=12_345,
            timestamp=MESSAGE_AT,
            key=key,
            value=value,
        ),
        now=DEAD_AT,
    )


def test_every_decode_reason_has_a_case() -> None:
    assert set(BAD_MESSAGES) == set(DecodeReason)


def test_dead_letter_reasons_include_every_decode_reason() -> None:
    assert {r.value for r in DecodeReason} < {r.value for r in DeadLetterReason}
    assert {"processing_error", "key_mismatch"} <= {r.value for r in DeadLetterReason}


@pytest.mark.parametrize("reason", BAD_MESSAGES, ids=str)
def test_dead_letter_from_each_decode_error_round_trips(reason: DecodeReason) -> None:
    bad = BAD_MESSAGES[reason]
    error = decode(bad.kind, bad.value, now=NOW, limits=LIMITS)
    assert isinstance(error, DecodeError)
    assert error.reason is reason

    letter = _letter(error, bad.value)
    back = DeadLetter.from_bytes(letter.to_bytes())

    assert back == letter
    assert back.reason.value == reason.value
    assert back.detail == error.detail
    assert [(e.loc, e.msg, e.type) for e in back.errors] == [
        (e.loc, e.msg, e.type) for e in error.errors
    ]
    assert back.event_type == error.event_type
    assert back.raw_value() == (bad.value or b"")
    assert back.value_size == len(bad.value or b"")
    assert back.raw_key() == b"cus-1"
    assert (back.topic, back.partition, back.offset) == ("shop.cart", 3, 12_345)
    assert (back.timestamp, back.dead_lettered_at) == (MESSAGE_AT, DEAD_AT)


def test_wire_form_is_plain_json_with_base64() -> None:
    error = decode(TopicKind.cart, b"\xff\xfe", now=NOW, limits=LIMITS)
    assert isinstance(error, DecodeError)
    wire = orjson.loads(_letter(error, b"\xff\xfe", key=b"\x00k").to_bytes())
    assert wire["reason"] == "not_utf8"
    assert wire["value_b64"] == base64.b64encode(b"\xff\xfe").decode()
    assert wire["key_b64"] == "AGs="
    assert wire["value_size"] == 2
    assert wire["timestamp"] == "2024-05-01T11:59:30Z"
    assert wire["schema_version"] == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [(None, None), (b"", b""), (None, b"\x00\x80\xff"), (b"\xff", b"{}")],
    ids=["no key, no value", "empty key and value", "binary value", "binary key"],
)
def test_key_and_value_bytes_are_kept_exactly(key: bytes | None, value: bytes | None) -> None:
    letter = dead_letter_from_exception(
        RuntimeError("boom"),
        SourceMessage(
            topic="t",
            partition=0,
            offset=0,
            timestamp=None,
            key=key,
            value=value,
        ),
        now=DEAD_AT,
    )
    back = DeadLetter.from_bytes(letter.to_bytes())
    assert back.raw_key() == key
    assert back.raw_value() == (value or b"")
    assert back.value_b64 == ("" if not value else base64.b64encode(value).decode())
    assert back.timestamp is None


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise ValueError("no")


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (ValueError("bad value"), "ValueError: bad value"),
        (KeyError("cus-1"), "KeyError: 'cus-1'"),
        (RuntimeError(), "RuntimeError"),
        (BrokenStr(), f"{__name__}.BrokenStr: <unprintable exception>"),
    ],
    ids=["builtin", "key error", "no message", "broken __str__"],
)
def test_dead_letter_from_exception(exc: Exception, detail: str) -> None:
    letter = dead_letter_from_exception(
        exc,
        SourceMessage(
            topic="cart",
            partition=1,
            offset=2,
            timestamp=MESSAGE_AT,
            key=b"cus-1",
            value=b"{}",
        ),
        now=DEAD_AT,
        event_type="cart_add",
    )
    assert letter.reason is DeadLetterReason.processing_error
    assert letter.detail == detail
    assert letter.event_type == "cart_add"
    assert DeadLetter.from_bytes(letter.to_bytes()) == letter


def test_exception_detail_is_truncated() -> None:
    letter = dead_letter_from_exception(
        ValueError("x" * 10_000),
        SourceMessage(
            topic="cart",
            partition=0,
            offset=0,
            timestamp=None,
            key=None,
            value=None,
        ),
        now=DEAD_AT,
    )
    assert len(letter.detail) == MAX_DETAIL_CHARS
    assert letter.detail.startswith("ValueError: xxx")
    assert letter.detail.endswith("\u2026")


def test_key_mismatch() -> None:
    raw = dumps(minimal("page_view"))
    event = decode(TopicKind.clickstream, raw, now=NOW, limits=LIMITS)
    assert isinstance(event, PageView)
    assert key_matches(event, b"cus-1")
    assert not key_matches(event, b"cus-2")
    assert not key_matches(event, None)

    letter = dead_letter_for_key_mismatch(
        event,
        SourceMessage(
            topic="clicks",
            partition=5,
            offset=9,
            timestamp=MESSAGE_AT,
            key=b"cus-2",
            value=raw,
        ),
        now=DEAD_AT,
    )
    assert letter.reason is DeadLetterReason.key_mismatch
    assert letter.detail == "message key 'cus-2' does not match customer_id 'cus-1'"
    assert letter.event_type == "page_view"
    assert DeadLetter.from_bytes(letter.to_bytes()).raw_value() == raw


def test_naive_times_are_a_caller_bug() -> None:
    error = decode(TopicKind.cart, None, now=NOW, limits=LIMITS)
    assert isinstance(error, DecodeError)
    with pytest.raises(ValidationError, match="timezone_aware"):
        dead_letter_from_error(
            error,
            SourceMessage(
                topic="t",
                partition=0,
                offset=0,
                timestamp=None,
                key=None,
                value=None,
            ),
            now=datetime(2024, 5, 1),  # noqa: DTZ001 - the mistake under test
        )


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ({"value_size": 3}, "value_size_mismatch"),
        ({"value_b64": "not base64!"}, "base64_invalid"),
        ({"reason": "bored"}, "enum"),
        ({"partition": -1}, "greater_than_equal"),
    ],
    ids=["size mismatch", "bad base64", "unknown reason", "negative partition"],
)
def test_reading_a_damaged_dead_letter_fails(change: dict[str, object], error_type: str) -> None:
    error = decode(TopicKind.cart, b"[]", now=NOW, limits=LIMITS)
    assert isinstance(error, DecodeError)
    wire = {**orjson.loads(_letter(error, b"[]").to_bytes()), **change}
    with pytest.raises(ValidationError, match=error_type):
        DeadLetter.from_bytes(orjson.dumps(wire))
