"""Messages of the trigger engine: triggers.outbound, triggers.holdout, triggers.decisions.

A :class:`TriggerMessage` is what the ESP connector turns into an email (on
``triggers.outbound``), or what the control group would have received (on
``triggers.holdout``, never sent). A :class:`DecisionMessage` records every
decision the policy took, sent or not, on ``triggers.decisions``.

Both are keyed by ``customer_id`` and carry ids derived from their content:
``trigger_id`` is the same for the same customer, trigger type and key (the
session or cart it is about), so the ESP side drops the duplicates a crash or
a replay produces, and at most one email per cart or session can go out.

Nothing personal beyond ids crosses here: no email address, no name. Locale
and time zone are carried so the ESP can pick the content and the hour. The
``reason`` sentence a trigger carries is built by its rule from product ids,
prices, counts and thresholds only, so it is as impersonal as the rest.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    TypeAdapter,
    computed_field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.common import Currency, Id, Label, Locale, Money, Quantity, TimeZoneName, UtcDatetime
from schemas.profiles import Segment

__all__ = [
    "DECISION_ADAPTER",
    "MAX_REASON_CHARS",
    "TRIGGER_ADAPTER",
    "TRIGGER_SCHEMA_VERSION",
    "Arm",
    "BrowsePayload",
    "CartItem",
    "CartPayload",
    "DecisionMessage",
    "DecisionReason",
    "HighIntentPayload",
    "Offer",
    "Outcome",
    "Reason",
    "Tier",
    "TriggerMessage",
    "TriggerPayload",
    "TriggerType",
    "ViewedProduct",
    "trigger_id",
]

TRIGGER_SCHEMA_VERSION: Final = 1
"""Version of both messages; bumped on any breaking change."""

MAX_PAYLOAD_ITEMS: Final = 100
"""Most products or cart lines one trigger carries; bounds the message size."""

MAX_REASON_CHARS: Final = 200
"""Longest ``reason`` sentence; the rules shorten what could make it longer."""

Reason = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON_CHARS)]
"""Why a trigger fired, in one sentence a person reads (an operator, the ESP's template)."""


class TriggerType(StrEnum):
    """What a trigger is about; one rule module each in ``streams.core.triggers``."""

    browse_abandonment = "browse_abandonment"
    cart_abandonment = "cart_abandonment"
    high_intent = "high_intent"


class Tier(StrEnum):
    """The journey tier, from the purchase propensity: the ESP picks content by it."""

    vip = "vip"
    discount = "discount"
    educational = "educational"


class Arm(StrEnum):
    """Experiment arm: treated customers get the email, the holdout never does."""

    treatment = "treatment"
    holdout = "holdout"


class Outcome(StrEnum):
    """What the policy decided for a trigger.

    ``sent`` and ``deferred`` (sent once ``send_after`` has passed) go to
    ``triggers.outbound``; ``holdout`` goes to ``triggers.holdout``;
    ``capped`` and ``suppressed`` go nowhere but ``triggers.decisions``.
    """

    sent = "sent"
    deferred = "deferred"
    holdout = "holdout"
    capped = "capped"
    suppressed = "suppressed"


class DecisionReason(StrEnum):
    """Why a trigger was not simply sent; the first six are suppression reasons."""

    erased = "erased"
    unsubscribed = "unsubscribed"
    complained = "complained"
    hard_bounced = "hard_bounced"
    soft_bounces = "soft_bounces"
    no_consent = "no_consent"
    frequency_cap = "frequency_cap"
    quiet_hours = "quiet_hours"
    holdout = "holdout"


def trigger_id(customer_id: str, trigger_type: str, key: str) -> str:
    """Derive a trigger's id: 32 hex digits of SHA-256 over customer, type and key.

    Examples
    --------
    >>> trigger_id("c1", "cart_abandonment", "cart-1")
    '304b57586773e537d7657d82e2854e72'
    >>> trigger_id("c1", "cart_abandonment", "cart-1") == trigger_id(
    ...     "c1", "cart_abandonment", "cart-1"
    ... )
    True

    """
    parts = (customer_id, str(trigger_type), key)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class _Message(BaseModel):
    # Every field is always written (None as null), so the serialization
    # schema lists them all as required: consumers may rely on them.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )

    def to_bytes(self) -> bytes:
        """Serialize for the topic (compact UTF-8 JSON; money as decimal strings)."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Read back what :meth:`to_bytes` wrote (validated)."""
        return cls.model_validate_json(raw)


class ViewedProduct(_Message):
    """A product the customer looked at, at the price shown."""

    product_id: Id
    price: Money
    currency: Currency
    category: Label | None = None
    viewed_at: UtcDatetime


class BrowsePayload(_Message):
    """Viewed products, most recent first, without repeats."""

    type: Literal["browse_abandonment"] = "browse_abandonment"
    products: Annotated[
        tuple[ViewedProduct, ...], Field(min_length=1, max_length=MAX_PAYLOAD_ITEMS)
    ]


class CartItem(_Message):
    """One line of the abandoned cart."""

    product_id: Id
    quantity: Quantity
    unit_price: Money


class CartPayload(_Message):
    """The abandoned cart: its lines (at most a configured number) and its whole value.

    ``line_count`` counts every line of the cart, also those left out of
    ``lines``; ``value`` is the whole cart's.
    """

    type: Literal["cart_abandonment"] = "cart_abandonment"
    cart_id: Id
    lines: Annotated[tuple[CartItem, ...], Field(min_length=1, max_length=MAX_PAYLOAD_ITEMS)]
    line_count: Annotated[int, Field(ge=1)]
    value: Annotated[
        Decimal,
        Field(ge=0, allow_inf_nan=False, description="The whole cart's value, a decimal string."),
    ]
    currency: Currency


class Offer(_Message):
    """The discount offered, and until when it is valid."""

    discount_percent: Annotated[int, Field(ge=1, le=100)]
    expires_at: UtcDatetime


class HighIntentPayload(_Message):
    """A discount offer, with the products of the session for context (may be empty)."""

    type: Literal["high_intent"] = "high_intent"
    offer: Offer
    products: Annotated[tuple[ViewedProduct, ...], Field(max_length=MAX_PAYLOAD_ITEMS)] = ()


TriggerPayload = Annotated[
    BrowsePayload | CartPayload | HighIntentPayload, Field(discriminator="type")
]
"""What the email is about; ``type`` equals the trigger's ``trigger_type``."""

_HEX32 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class TriggerMessage(_Message):
    """One trigger, as the ESP connector (or the holdout log) receives it.

    ``occurred_at`` is the event time that caused it (the event, or the
    deadline it waited for); ``decided_at`` when the policy decided;
    ``send_after`` is set when quiet hours hold it back; the ESP should drop
    it after ``expires_at``. ``score`` and ``model_version`` are absent when
    no model had scored the customer yet. ``attempt`` is 1 for a trigger
    offered again after the frequency cap held it back. ``reason`` says in a
    sentence why the rule fired, from the same inputs as the payload (so a
    replay repeats it byte for byte); it names products and amounts, never
    the customer.
    """

    schema_version: Literal[1] = TRIGGER_SCHEMA_VERSION
    customer_id: Id
    trigger_type: TriggerType
    key: Id = Field(description="The session or cart the trigger is about.")
    arm: Arm
    tier: Tier
    segment: Segment = Field(description="The customer's RFM segment when decided.")
    occurred_at: UtcDatetime = Field(description="The event or deadline that caused it.")
    decided_at: UtcDatetime
    send_after: UtcDatetime | None = Field(
        default=None, description="Hold until then (quiet hours); null: send now."
    )
    expires_at: UtcDatetime = Field(description="Drop it, unsent, after this.")
    attempt: Annotated[int, Field(ge=0, le=1)] = 0
    score: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Purchase propensity the tier came from; null if unscored."
    )
    model_version: Label | None = Field(default=None, description="The model that scored it.")
    locale: Locale | None = None
    time_zone: TimeZoneName | None = None
    reason: Reason = Field(description="Why the trigger fired, one sentence, no personal data.")
    payload: TriggerPayload

    @computed_field  # type: ignore[prop-decorator]
    @property
    def trigger_id(self) -> str:
        """Same customer, type and key: same id, so the ESP can drop duplicates."""
        return trigger_id(self.customer_id, self.trigger_type, self.key)

    @model_validator(mode="wrap")
    @classmethod
    def _read_back(cls, data: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # The id is derived, not stored: accept it when reading a message back
        # (what to_bytes wrote), but only if it is the id the content gives.
        claimed = None
        if isinstance(data, dict) and "trigger_id" in data:
            data = dict(data)
            claimed = data.pop("trigger_id")
        message = handler(data)
        if claimed is not None and claimed != message.trigger_id:
            raise PydanticCustomError(
                "trigger_id_mismatch", "trigger_id does not match customer_id, trigger_type, key"
            )
        return message

    @model_validator(mode="after")
    def _payload_matches_type(self) -> Self:
        if self.payload.type != self.trigger_type:
            raise PydanticCustomError(
                "payload_type_mismatch", "payload.type must equal trigger_type"
            )
        return self


class DecisionMessage(_Message):
    """One decision of the policy, whatever it was.

    ``reason`` is the policy's: why the trigger was not simply sent (None
    for ``sent``). ``trigger_reason`` is the rule's: why the trigger fired,
    the ``reason`` its :class:`TriggerMessage` carries, here for every
    outcome (a suppressed trigger has no message of its own).
    ``retry_after`` is set on a ``capped`` decision whose trigger will be
    offered once more at that time; ``send_after`` on a ``deferred`` (or
    quiet-hours ``holdout``) one.
    """

    schema_version: Literal[1] = TRIGGER_SCHEMA_VERSION
    trigger_id: _HEX32
    customer_id: Id
    trigger_type: TriggerType
    key: Id
    outcome: Outcome
    reason: DecisionReason | None = None
    trigger_reason: Reason
    tier: Tier
    attempt: Annotated[int, Field(ge=0, le=1)] = 0
    occurred_at: UtcDatetime
    decided_at: UtcDatetime
    send_after: UtcDatetime | None = None
    retry_after: UtcDatetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decision_id(self) -> str:
        """Same trigger, occurrence and attempt: same id (a replay repeats it exactly)."""
        parts = (self.trigger_id, self.occurred_at.isoformat(), str(self.attempt))
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    @model_validator(mode="wrap")
    @classmethod
    def _read_back(cls, data: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        claimed = None
        if isinstance(data, dict) and "decision_id" in data:
            data = dict(data)
            claimed = data.pop("decision_id")
        message = handler(data)
        if claimed is not None and claimed != message.decision_id:
            raise PydanticCustomError("decision_id_mismatch", "decision_id does not match")
        return message

    @model_validator(mode="after")
    def _reason_fits_outcome(self) -> Self:
        if (self.reason is None) != (self.outcome is Outcome.sent):
            raise PydanticCustomError(
                "reason_mismatch", "reason is required unless the outcome is sent"
            )
        return self


TRIGGER_ADAPTER: Final[TypeAdapter[TriggerMessage]] = TypeAdapter(TriggerMessage)
"""Describes (JSON Schema) ``triggers.outbound`` and ``triggers.holdout``."""

DECISION_ADAPTER: Final[TypeAdapter[DecisionMessage]] = TypeAdapter(DecisionMessage)
"""Describes (JSON Schema) ``triggers.decisions``."""
