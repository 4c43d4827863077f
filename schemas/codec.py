"""Bytes to events and back: the one door every inbound message goes through.

:func:`decode` never raises. A stream agent that crashes on one bad message
stops the partition behind it, so every failure, from an empty value to an
internal error, comes back as a :class:`DecodeError` value that says why in a
machine-readable reason and one human sentence, ready for the dead-letter
topic.

The checks run cheapest first, each with its own reason: size before parsing,
UTF-8, JSON (orjson: it refuses nesting deeper than 1024 and numbers that do
not fit a double), object shape, then the ``type`` tag, so that a message sent
to the wrong topic is told apart from one nobody knows, then the length of
bounded arrays (an order's lines): pydantic would validate every item of a
256 KiB array of junk before counting it, and list each item's error, half a
second of work for one message. Only then does pydantic validate the
fields, from the raw bytes in strict JSON mode: JSON
strings become timestamps (RFC 3339 is the wire format), but ``"3"`` never
becomes a quantity. Validating from bytes parses twice (orjson to route,
pydantic's parser to validate); strict *Python* mode over orjson's dict would
parse once but reject timestamp strings, and lax mode would accept
``"quantity": "3"``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypeAlias

import orjson
from annotated_types import MaxLen
from pydantic import TypeAdapter, ValidationError

from schemas.cart import (
    CART_ADAPTER,
    CartAdd,
    CartEvent,
    CartRemove,
    CheckoutStarted,
    OrderCompleted,
)
from schemas.clickstream import (
    CLICKSTREAM_ADAPTER,
    CategoryView,
    ClickstreamEvent,
    PageView,
    ProductView,
    Search,
)
from schemas.customers import (
    CUSTOMERS_ADAPTER,
    ConsentChanged,
    CustomerErased,
    CustomerEvent,
    ProfileAttributes,
)
from schemas.email import (
    EMAIL_ADAPTER,
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailEvent,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
)
from schemas.envelope import validation_context

__all__ = [
    "ADAPTERS",
    "ANY_EVENT_TYPE",
    "EVENT_TYPES",
    "MAX_FIELD_ERRORS",
    "DecodeError",
    "DecodeLimits",
    "DecodeReason",
    "FieldError",
    "InboundEvent",
    "TopicKind",
    "decode",
    "encode",
    "field_errors",
]

InboundEvent: TypeAlias = (
    PageView
    | ProductView
    | CategoryView
    | Search
    | CartAdd
    | CartRemove
    | CheckoutStarted
    | OrderCompleted
    | EmailSent
    | EmailDelivered
    | EmailOpen
    | EmailClick
    | EmailBounce
    | EmailUnsubscribe
    | EmailComplaint
    | ConsentChanged
    | CustomerErased
    | ProfileAttributes
)
"""Any event Nudge reads from its inbound topics."""

MAX_FIELD_ERRORS: Final = 20
"""Field errors kept per message; a 500-line order can fail 1500 ways."""

_MAX_MSG_CHARS: Final = 300
_MAX_DETAIL_CHARS: Final = 1000
_MAX_TYPE_CHARS: Final = 128


class TopicKind(StrEnum):
    """The inbound topics, by what they carry (the Kafka names live in settings)."""

    clickstream = "clickstream"
    cart = "cart"
    email = "email"
    customers = "customers"


ADAPTERS: Final[Mapping[TopicKind, TypeAdapter[Any]]] = {
    TopicKind.clickstream: CLICKSTREAM_ADAPTER,
    TopicKind.cart: CART_ADAPTER,
    TopicKind.email: EMAIL_ADAPTER,
    TopicKind.customers: CUSTOMERS_ADAPTER,
}
"""The discriminated union of each topic, as a pydantic ``TypeAdapter``."""


_UNIONS: Final[Mapping[TopicKind, object]] = {
    TopicKind.clickstream: ClickstreamEvent,
    TopicKind.cart: CartEvent,
    TopicKind.email: EmailEvent,
    TopicKind.customers: CustomerEvent,
}


def _members(annotated_union: object) -> dict[str, type[InboundEvent]]:
    # The union inside Annotated[Union[...], Field(discriminator="type")] is
    # the single list of a topic's events; read the tags off its members.
    union, *_ = typing.get_args(annotated_union)
    members: dict[str, type[InboundEvent]] = {}
    for cls in typing.get_args(union):
        members[cls.model_fields["type"].default] = cls
    return members


EVENT_TYPES: Final[Mapping[TopicKind, Mapping[str, type[InboundEvent]]]] = {
    kind: _members(union) for kind, union in _UNIONS.items()
}
"""For each topic, its ``type`` tags and the class each one decodes to."""

_TOPIC_OF_TYPE: Final[Mapping[str, TopicKind]] = {
    tag: kind for kind, members in EVENT_TYPES.items() for tag in members
}


def _array_bounds(cls: type[InboundEvent]) -> tuple[tuple[str, int], ...]:
    # The (field, most items) of each array field with a max_length, read off
    # the model so the bound has one definition.
    return tuple(
        (name, bound.max_length)
        for name, info in cls.model_fields.items()
        if typing.get_origin(info.annotation) is tuple
        for bound in info.metadata
        if isinstance(bound, MaxLen)
    )


_ARRAY_BOUNDS: Final[Mapping[type[InboundEvent], tuple[tuple[str, int], ...]]] = {
    cls: _array_bounds(cls) for members in EVENT_TYPES.values() for cls in members.values()
}

ANY_EVENT_TYPE: Final[Mapping[str, type[InboundEvent]]] = {
    tag: cls for members in EVENT_TYPES.values() for tag, cls in members.items()
}
"""Every ``type`` tag and its class: what the replay topic (``kind=None``) accepts."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what :func:`decode` accepts, from settings.

    ``max_bytes`` is checked before anything is parsed. ``max_future_skew`` is
    how far ``occurred_at`` may be ahead of ``now``: producer clocks drift,
    but an event from next week would hold deadlines open forever.
    """

    max_bytes: int
    max_future_skew: timedelta

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self.max_future_skew < timedelta(0):
            raise ValueError("max_future_skew must not be negative")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing wrong with one field.

    ``loc`` is the dotted path (``lines.0.quantity``; empty for the event as a
    whole), ``type`` pydantic's error type (``greater_than_equal``...) or one
    of Nudge's (``currency_unknown``...), stable enough to count by.
    """

    loc: str
    msg: str
    type: str


class DecodeReason(StrEnum):
    """Why a message could not be decoded, from the cheapest check to the last."""

    empty = "empty"
    too_large = "too_large"
    not_utf8 = "not_utf8"
    invalid_json = "invalid_json"
    not_an_object = "not_an_object"
    unknown_type = "unknown_type"
    wrong_topic = "wrong_topic"
    validation_failed = "validation_failed"


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A message that is not a valid event of its topic, and why.

    ``detail`` is one sentence for people; ``errors`` lists the field errors
    (at most :data:`MAX_FIELD_ERRORS`); ``event_type`` is the ``type`` tag if
    one could be read. A message with no usable ``type`` is ``unknown_type``,
    so ``validation_failed`` always names the event type it failed as.
    """

    reason: DecodeReason
    detail: str
    errors: tuple[FieldError, ...] = ()
    event_type: str | None = None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """Turn pydantic's errors into :class:`FieldError` values, bounded in number."""
    return tuple(
        FieldError(
            loc=".".join(str(part) for part in error["loc"]),
            msg=_clip(error["msg"], _MAX_MSG_CHARS),
            type=error["type"],
        )
        for error in exc.errors(include_url=False, include_input=False, include_context=False)[
            :MAX_FIELD_ERRORS
        ]
    )


def _sentence(errors: tuple[FieldError, ...], total: int) -> str:
    first = errors[0]
    where = f"field '{first.loc}'" if first.loc else "event"
    more = total - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return _clip(f"{where}: {first.msg}{tail}", _MAX_DETAIL_CHARS)


def _type_error(
    reason: DecodeReason, detail: str, error: FieldError, event_type: str | None = None
) -> DecodeError:
    return DecodeError(reason, _clip(detail, _MAX_DETAIL_CHARS), (error,), event_type)


def _decode(
    kind: TopicKind | None, raw: bytes | None, now: datetime, limits: DecodeLimits
) -> InboundEvent | DecodeError:
    if raw is None:
        return DecodeError(DecodeReason.empty, "message has no value (null, a tombstone)")
    raw = bytes(raw)
    if not raw:
        return DecodeError(DecodeReason.empty, "message value is empty (0 bytes)")
    if len(raw) > limits.max_bytes:
        return DecodeError(
            DecodeReason.too_large,
            f"message is {len(raw)} bytes; the limit is {limits.max_bytes}",
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeError(
            DecodeReason.not_utf8,
            f"message is not valid UTF-8: {exc.reason} at byte {exc.start}",
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return DecodeError(DecodeReason.invalid_json, _clip(f"invalid JSON: {exc}", 300))
    if not isinstance(obj, dict):
        return DecodeError(
            DecodeReason.not_an_object,
            f"expected a JSON object, got {_json_kind(obj)}",
        )

    members = ANY_EVENT_TYPE if kind is None else EVENT_TYPES[kind]
    tag = obj.get("type")
    if tag is None:
        return _type_error(
            DecodeReason.unknown_type,
            f"field 'type' is missing; {_carries(kind, members)}",
            FieldError("type", "Field required", "missing"),
        )
    if not isinstance(tag, str):
        return _type_error(
            DecodeReason.unknown_type,
            f"field 'type' should be a string, got {_json_kind(tag)}; {_carries(kind, members)}",
            FieldError("type", "Input should be a valid string", "string_type"),
        )
    event_type = _clip(tag, _MAX_TYPE_CHARS)
    cls = members.get(tag)
    if cls is None:
        home = _TOPIC_OF_TYPE.get(tag)
        if home is None:
            return _type_error(
                DecodeReason.unknown_type,
                f"field 'type': unknown event type {event_type!r}; {_carries(kind, members)}",
                FieldError(
                    "type", f"Input should be one of: {', '.join(members)}", "union_tag_invalid"
                ),
                event_type,
            )
        return _type_error(
            DecodeReason.wrong_topic,
            f"field 'type': {tag!r} events belong on the {home} topic, not {kind}",
            FieldError("type", f"Event type belongs on the {home} topic", "wrong_topic"),
            event_type,
        )

    for name, most in _ARRAY_BOUNDS[cls]:
        items = obj.get(name)
        if isinstance(items, list) and len(items) > most:
            error = FieldError(
                name, f"Tuple should have at most {most} items, not {len(items)}", "too_long"
            )
            return DecodeError(
                DecodeReason.validation_failed, _sentence((error,), 1), (error,), event_type
            )

    context = validation_context(now=now, max_future_skew=limits.max_future_skew)
    try:
        event = cls.model_validate_json(raw, context=context)
    except ValidationError as exc:
        errors = field_errors(exc)
        if any(error.type == "json_invalid" for error in errors):
            # pydantic's parser nests less deeply (about 200) than orjson.
            detail = _clip(errors[0].msg, _MAX_DETAIL_CHARS)
            return DecodeError(DecodeReason.invalid_json, detail, errors, event_type)
        return DecodeError(
            DecodeReason.validation_failed,
            _sentence(errors, exc.error_count()),
            errors,
            event_type,
        )
    return event


def _carries(kind: TopicKind | None, members: Mapping[str, object]) -> str:
    """Say what the topic carries, for an error: built only then, not for every message."""
    topic = "replay" if kind is None else kind.value
    return f"the {topic} topic carries: {', '.join(members)}"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "an object"


def decode(
    kind: TopicKind | None, raw: bytes | None, *, now: datetime, limits: DecodeLimits
) -> InboundEvent | DecodeError:
    """Decode one message of an inbound topic; never raises.

    Parameters
    ----------
    kind
        The topic the message was read from; only its event types are accepted.
        ``None`` for the replay topic, which carries every event type.
    raw
        The message value as read from Kafka (``None`` for a tombstone).
    now
        The decoding time (aware), for the future-timestamp check.
    limits
        Size and clock-skew bounds.

    Returns
    -------
    InboundEvent | DecodeError
        The event, or why there is none. Even an unexpected internal error
        comes back as a ``validation_failed`` :class:`DecodeError` whose
        detail starts with "unexpected error".

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> limits = DecodeLimits(max_bytes=65_536, max_future_skew=timedelta(minutes=5))
    >>> now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    >>> raw = (
    ...     b'{"type": "cart_add", "event_id": "e1", "customer_id": "c1",'
    ...     b' "occurred_at": "2024-05-01T11:59:00Z", "cart_id": "k1",'
    ...     b' "product_id": "p1", "quantity": 2, "unit_price": "19.99", "currency": "EUR"}'
    ... )
    >>> decode(TopicKind.cart, raw, now=now, limits=limits).quantity
    2
    >>> decode(TopicKind.cart, raw.replace(b"2,", b"0,"), now=now, limits=limits).detail
    "field 'quantity': Input should be greater than or equal to 1"

    """
    try:
        if now.tzinfo is None or now.utcoffset() is None:
            return DecodeError(
                DecodeReason.validation_failed,
                "unexpected error: decode() needs a timezone-aware `now`, got a naive datetime",
            )
        return _decode(kind, raw, now, limits)
    except Exception as exc:  # the contract: never raise, whatever the input
        return DecodeError(
            DecodeReason.validation_failed,
            _clip(f"unexpected error while decoding: {type(exc).__name__}: {exc}", 1000),
        )


def encode(event: InboundEvent) -> bytes:
    """Serialize an event to the wire format ``decode`` reads (UTF-8 JSON).

    Money is written as a decimal string and timestamps in UTC; decoding the
    result gives back an equal event.
    """
    return orjson.dumps(event.model_dump(mode="json"))
