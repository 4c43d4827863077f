"""The envelope: the fields every inbound event carries, and how they are checked.

Every event is a frozen pydantic model in strict mode. Frozen, because the
profile reducer keeps events and values it builds from them, and Faust tables
only persist reassigned values; strict, because a tracker that sends
``"quantity": "3"`` or ``"price": true`` has a bug that coercion would hide.
JSON strings are still parsed into timestamps: that is what RFC 3339 on the
wire means, not coercion.

Unknown fields are ignored, not rejected. The producers are outside Nudge (the
shop's tracker, its cart service, the ESP's webhooks) and add fields without
asking; rejecting them would send a whole topic to the dead-letter topic the
day an ESP ships a new webhook attribute. A change that removes or redefines a
field bumps ``schema_version`` instead, and only supported versions are
accepted. The price of this choice is that a misspelt *optional* field is
silently dropped (a misspelt required field is still reported as missing), so
producers should be tested against the exported JSON Schemas.

Whether ``occurred_at`` is too far in the future depends on the time of
decoding, which a model cannot know: it comes in the validation context
(:func:`validation_context`), and without a context that check is skipped.
How far in the past it may be is fixed (:data:`OLDEST_OCCURRED_AT`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypedDict

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.common import Id, UtcDatetime

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "OLDEST_OCCURRED_AT",
    "SUPPORTED_SCHEMA_VERSIONS",
    "Envelope",
    "Payload",
    "ValidationContext",
    "validation_context",
]

CURRENT_SCHEMA_VERSION: Final = 1
"""The version ``encode`` writes and new events get by default."""

SUPPORTED_SCHEMA_VERSIONS: Final[frozenset[int]] = frozenset({1})
"""The versions the decoder understands; anything else is rejected, not guessed."""

OLDEST_OCCURRED_AT: Final = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest ``occurred_at`` accepted.

No shop event is that old, and a time near ``datetime.min`` leaves no room
for the arithmetic that follows: the watermark is event time minus the
allowed lateness, and the rules subtract their waits and windows (days), all
of which overflow near year 1. Rejected here, such an event is dead-lettered
with a reason instead of failing wherever the first subtraction happens.
"""


class ValidationContext(TypedDict):
    """What validation needs to know about the moment of decoding."""

    now: datetime
    max_future_skew: timedelta


def validation_context(*, now: datetime, max_future_skew: timedelta) -> ValidationContext:
    """Build the context that turns on the future-timestamp check.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from schemas.clickstream import CategoryView
    >>> raw = (
    ...     b'{"type": "category_view", "event_id": "e1", "customer_id": "c1",'
    ...     b' "occurred_at": "2024-05-01T12:10:00Z", "category": "shoes"}'
    ... )
    >>> now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    >>> ctx = validation_context(now=now, max_future_skew=timedelta(minutes=5))
    >>> CategoryView.model_validate_json(raw, context=ctx)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for CategoryView
    occurred_at
      Timestamp is 0:10:00 ahead of now; at most 0:05:00 of clock skew is allowed ...

    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    if max_future_skew < timedelta(0):
        raise ValueError("`max_future_skew` must not be negative")
    return {"now": now, "max_future_skew": max_future_skew}


def _supported_version(value: int) -> int:
    if value not in SUPPORTED_SCHEMA_VERSIONS:
        raise PydanticCustomError(
            "schema_version_unsupported",
            "schema_version {version} is not supported (supported: {supported})",
            {
                "version": value,
                "supported": ", ".join(map(str, sorted(SUPPORTED_SCHEMA_VERSIONS))),
            },
        )
    return value


SchemaVersion = Annotated[
    int,
    AfterValidator(_supported_version),
    Field(
        description="Version of this event's schema; only supported versions are accepted.",
        json_schema_extra={"enum": sorted(SUPPORTED_SCHEMA_VERSIONS)},
    ),
]


def _type_is_required(schema: dict[str, Any]) -> None:
    # `type` has a default so Python callers need not repeat the class name,
    # but on the wire it is what routes the event: the contract requires it.
    required: list[str] = schema.setdefault("required", [])
    if "type" in schema.get("properties", {}) and "type" not in required:
        required.insert(0, "type")


class Payload(BaseModel):
    """Base of every model read from a topic: strict, frozen, unknown fields ignored.

    Strict applies to Python construction too: pass ``Decimal`` amounts,
    aware ``datetime`` values and tuples, as decoding would produce.
    """

    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,
        json_schema_extra=_type_is_required,
    )


class Envelope(Payload):
    """Fields common to every inbound event; each event class fixes ``type``."""

    type: str = Field(description="What happened; selects the event's schema.")
    event_id: Id = Field(description="Unique per event; producers reuse it when they retry.")
    customer_id: Id = Field(description="Who it happened to; also the Kafka message key.")
    occurred_at: UtcDatetime = Field(description="When it happened (event time), with an offset.")
    session_id: Id | None = Field(default=None, description="Browsing session, when known.")
    schema_version: SchemaVersion = CURRENT_SCHEMA_VERSION

    @field_validator("occurred_at")
    @classmethod
    def _not_too_old(cls, value: datetime) -> datetime:
        if value < OLDEST_OCCURRED_AT:
            raise PydanticCustomError(
                "datetime_too_far_in_past",
                "Timestamp is before {oldest}; no event is that old",
                {"oldest": OLDEST_OCCURRED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")},
            )
        return value

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        context = info.context
        if not isinstance(context, dict) or "now" not in context:
            return value
        now: datetime = context["now"]
        skew: timedelta = context["max_future_skew"]
        ahead = value - now
        if ahead > skew:
            raise PydanticCustomError(
                "datetime_too_far_in_future",
                "Timestamp is {ahead} ahead of now; at most {skew} of clock skew is allowed",
                {"ahead": str(ahead), "skew": str(skew)},
            )
        return value
