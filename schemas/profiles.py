"""Messages on ``profiles.outbound``: what the ESP side learns about a customer.

The ESP keeps audiences (segments) in sync from this topic and forgets a
customer when told they were erased. Each message is keyed by
``customer_id`` and carries a ``message_id`` derived from its content, so a
consumer can drop the duplicates a crash or a replay produces.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, computed_field

from schemas.common import Id, UtcDatetime

__all__ = [
    "PROFILE_MESSAGE_ADAPTER",
    "ProfileErased",
    "ProfileMessage",
    "Segment",
    "SegmentChanged",
]

PROFILE_MESSAGE_SCHEMA_VERSION: Final = 1


class Segment(StrEnum):
    """RFM segments, plus ``prospect`` for a customer who never ordered."""

    champions = "champions"
    loyal = "loyal"
    potential_loyalist = "potential_loyalist"
    new_customer = "new_customer"
    promising = "promising"
    need_attention = "need_attention"
    about_to_sleep = "about_to_sleep"
    at_risk = "at_risk"
    cannot_lose = "cannot_lose"
    hibernating = "hibernating"
    lost = "lost"
    prospect = "prospect"


def _message_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class _ProfileMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = PROFILE_MESSAGE_SCHEMA_VERSION
    customer_id: Id

    def to_bytes(self) -> bytes:
        """Serialize for the outbound topic (UTF-8 JSON)."""
        return orjson.dumps(self.model_dump(mode="json"))


class SegmentChanged(_ProfileMessage):
    """The customer's RFM segment changed (``previous_segment`` None: a new profile).

    ``as_of`` is the event time the segment was computed at (the customer's
    latest event), so replaying the same events gives the same messages.
    """

    type: Literal["segment_changed"] = "segment_changed"
    previous_segment: Segment | None
    segment: Segment
    as_of: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message_id(self) -> str:
        """Same customer, time and segment: same id, so consumers can drop duplicates."""
        return _message_id(self.type, self.customer_id, self.as_of.isoformat(), self.segment)


class ProfileErased(_ProfileMessage):
    """The customer was erased: downstream stores must forget them too."""

    type: Literal["profile_erased"] = "profile_erased"
    erased_at: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message_id(self) -> str:
        """Same customer and erasure time: same id."""
        return _message_id(self.type, self.customer_id, self.erased_at.isoformat())


ProfileMessage = Annotated[SegmentChanged | ProfileErased, Field(discriminator="type")]
"""Any message on ``profiles.outbound``."""

PROFILE_MESSAGE_ADAPTER: Final[TypeAdapter[ProfileMessage]] = TypeAdapter(ProfileMessage)
