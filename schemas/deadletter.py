"""The dead-letter message: what Nudge writes when it cannot use a message.

Nothing is dropped. A message that fails to decode, or whose processing
fails, is written to ``events.deadletter`` with enough to understand it (the
reason, one sentence, the field errors) and enough to replay it (source
topic, partition, offset, timestamp and the raw key and value, base64 encoded
so that bytes that are not UTF-8 survive JSON exactly). The helpers here are
pure: the shell passes in the message (a :class:`SourceMessage`) and ``now``.

The raw value is kept whole, so a dead letter is about 4/3 the size of the
message it carries: the dead-letter topic's ``max.message.bytes`` must allow
for that.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.codec import DecodeError, InboundEvent
from schemas.common import UtcDatetime

__all__ = [
    "DEAD_LETTER_SCHEMA_VERSION",
    "MAX_DETAIL_CHARS",
    "DeadLetter",
    "DeadLetterFieldError",
    "DeadLetterReason",
    "SourceMessage",
    "dead_letter_for_key_mismatch",
    "dead_letter_from_error",
    "dead_letter_from_exception",
    "key_matches",
]

DEAD_LETTER_SCHEMA_VERSION: Final = 1
"""Version of the dead-letter message; bumped on any breaking change."""

MAX_DETAIL_CHARS: Final = 1000
"""Longest ``detail`` written; exception messages can be arbitrarily long."""

_MAX_EVENT_TYPE_CHARS: Final = 128
_MAX_KEY_SHOWN_CHARS: Final = 200


class DeadLetterReason(StrEnum):
    """Every :class:`~schemas.codec.DecodeReason`, plus what can go wrong after decoding."""

    empty = "empty"
    too_large = "too_large"
    not_utf8 = "not_utf8"
    invalid_json = "invalid_json"
    not_an_object = "not_an_object"
    unknown_type = "unknown_type"
    wrong_topic = "wrong_topic"
    validation_failed = "validation_failed"
    processing_error = "processing_error"
    """The event decoded, but the core raised while handling it."""
    key_mismatch = "key_mismatch"
    """The Kafka key is not the event's ``customer_id``, so the wrong worker owns it."""


class DeadLetterFieldError(BaseModel):
    """One field error, as in :class:`~schemas.codec.FieldError`."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    loc: str
    msg: str
    type: str


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise PydanticCustomError("base64_invalid", "Should be standard base64") from None
    return value


Base64Text = Annotated[str, AfterValidator(_base64)]


class DeadLetter(BaseModel):
    """A message Nudge could not use, with why and the bytes to replay it."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    schema_version: int = DEAD_LETTER_SCHEMA_VERSION
    reason: DeadLetterReason
    detail: str = Field(max_length=MAX_DETAIL_CHARS, description="One sentence for people.")
    errors: tuple[DeadLetterFieldError, ...] = ()
    event_type: str | None = Field(
        default=None, description="The message's `type` tag, if one could be read."
    )
    topic: str = Field(min_length=1, max_length=249, description="Source topic.")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp: UtcDatetime | None = Field(description="The source message's timestamp.")
    dead_lettered_at: UtcDatetime
    key_b64: Base64Text | None = Field(description="Raw message key, base64; null if none.")
    value_b64: Base64Text = Field(description='Raw message value, base64; "" if none.')
    value_size: int = Field(ge=0, description="Length of the raw value in bytes.")

    @model_validator(mode="after")
    def _size_matches(self) -> Self:
        if len(self.raw_value()) != self.value_size:
            raise PydanticCustomError(
                "value_size_mismatch", "value_size does not match the decoded value_b64"
            )
        return self

    def raw_value(self) -> bytes:
        """Return the raw message value, exactly as read (``b""`` if there was none)."""
        return base64.b64decode(self.value_b64)

    def raw_key(self) -> bytes | None:
        """Return the raw message key, exactly as read (``None`` if there was none)."""
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)

    def to_bytes(self) -> bytes:
        """Serialize for the dead-letter topic (UTF-8 JSON)."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Read a dead letter back, for replay tools and tests."""
        return cls.model_validate_json(raw)


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """The consumed message a dead letter is about, as the shell read it.

    A dead letter must point back to exactly one consumed message (topic,
    partition, offset) and carry its bytes (key and value, exactly as read) so
    that it can be understood and replayed; one value keeps those six facts
    together instead of threading them through every builder. ``timestamp``,
    when present, must be timezone-aware.
    """

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    value: bytes | None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def _build(
    reason: DeadLetterReason,
    detail: str,
    source: SourceMessage,
    *,
    now: datetime,
    errors: tuple[DeadLetterFieldError, ...] = (),
    event_type: str | None,
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        detail=_clip(detail, MAX_DETAIL_CHARS),
        errors=errors,
        event_type=None if event_type is None else _clip(event_type, _MAX_EVENT_TYPE_CHARS),
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        timestamp=source.timestamp,
        dead_lettered_at=now,
        key_b64=_b64(source.key),
        value_b64=_b64(source.value) or "",
        value_size=0 if source.value is None else len(source.value),
    )


def dead_letter_from_error(
    error: DecodeError,
    source: SourceMessage,
    *,
    now: datetime,
) -> DeadLetter:
    r"""Build the dead letter for a message :func:`~schemas.codec.decode` rejected.

    ``source.timestamp`` and ``now`` must be timezone-aware; a naive
    one is a bug in the caller and raises ``pydantic.ValidationError``.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from schemas.codec import DecodeLimits, TopicKind, decode
    >>> now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    >>> limits = DecodeLimits(max_bytes=1024, max_future_skew=timedelta(minutes=5))
    >>> error = decode(TopicKind.cart, b"\xff", now=now, limits=limits)
    >>> source = SourceMessage(
    ...     topic="cart", partition=3, offset=42, timestamp=None, key=b"c1", value=b"\xff"
    ... )
    >>> letter = dead_letter_from_error(error, source, now=now)
    >>> letter.reason, letter.value_b64, letter.raw_value()
    (<DeadLetterReason.not_utf8: 'not_utf8'>, '/w==', b'\xff')

    """
    return _build(
        DeadLetterReason(error.reason.value),
        error.detail,
        source,
        now=now,
        errors=tuple(DeadLetterFieldError(loc=e.loc, msg=e.msg, type=e.type) for e in error.errors),
        event_type=error.event_type,
    )


def _describe(exc: BaseException) -> str:
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    try:
        message = str(exc)
    except Exception:  # an exception whose __str__ fails still gets a dead letter
        message = "<unprintable exception>"
    return f"{name}: {message}" if message else name


def dead_letter_from_exception(
    exc: BaseException,
    source: SourceMessage,
    *,
    now: datetime,
    event_type: str | None = None,
) -> DeadLetter:
    """Build the dead letter for an event whose processing raised ``exc``.

    The detail is the exception's class and message, cut to
    :data:`MAX_DETAIL_CHARS`; the traceback belongs in the logs, not on a topic.
    """
    return _build(
        DeadLetterReason.processing_error,
        _describe(exc),
        source,
        now=now,
        event_type=event_type,
    )


def key_matches(event: InboundEvent, key: bytes | None) -> bool:
    """Tell whether a message is keyed by its event's customer, as co-partitioning needs."""
    return key == event.customer_id.encode("utf-8")


def dead_letter_for_key_mismatch(
    event: InboundEvent,
    source: SourceMessage,
    *,
    now: datetime,
) -> DeadLetter:
    """Build the dead letter for an event whose Kafka key is not its ``customer_id``.

    Such an event sits on a partition another worker's customer may own, so
    applying it could split one customer's profile across workers.
    """
    key = source.key
    shown = "no key" if key is None else repr(key.decode("utf-8", errors="replace"))
    return _build(
        DeadLetterReason.key_mismatch,
        f"message key {_clip(shown, _MAX_KEY_SHOWN_CHARS)} does not match "
        f"customer_id {event.customer_id!r}",
        source,
        now=now,
        event_type=event.type,
    )
