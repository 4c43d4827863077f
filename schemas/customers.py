"""Customer events: consent, erasure and profile attributes.

These change what Nudge may do rather than what it knows about intent:
consent and erasure gate every email, time zone and locale decide when and in
which language a trigger is sent.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, Self

from pydantic import Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from schemas.common import Label, Locale, TimeZoneName
from schemas.envelope import Envelope

__all__ = [
    "CUSTOMERS_ADAPTER",
    "ConsentChanged",
    "CustomerErased",
    "CustomerEvent",
    "ProfileAttributes",
]


class ConsentChanged(Envelope):
    """Marketing consent for a channel was granted or withdrawn.

    ``granted`` is a boolean rather than a state machine: Nudge only needs to
    know whether it may send now. A pending double opt-in is ``false`` until
    it is confirmed.
    """

    type: Literal["consent_changed"] = "consent_changed"
    channel: Literal["email"]
    granted: bool
    source: Label | None = Field(
        default=None, description="Where the change came from (signup form, preference center)."
    )


class CustomerErased(Envelope):
    """The customer asked to be forgotten: drop the profile, never email again."""

    type: Literal["customer_erased"] = "customer_erased"


class ProfileAttributes(Envelope):
    """Attributes that shape how to email the customer; at least one is given.

    A field left out means "unchanged", not "cleared".
    """

    type: Literal["profile_attributes"] = "profile_attributes"
    time_zone: TimeZoneName | None = None
    locale: Locale | None = None

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if self.time_zone is None and self.locale is None:
            raise PydanticCustomError(
                "no_attributes", "At least one of time_zone and locale must be given"
            )
        return self


CustomerEvent = Annotated[
    ConsentChanged | CustomerErased | ProfileAttributes,
    Field(discriminator="type"),
]
"""Any event of the customers topic, told apart by ``type``."""

CUSTOMERS_ADAPTER: Final[TypeAdapter[CustomerEvent]] = TypeAdapter(CustomerEvent)
"""Validates and describes (JSON Schema) the customers topic's messages."""
