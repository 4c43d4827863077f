"""Email events, relayed from the ESP's webhooks.

They close the loop: engagement (opens, clicks) feeds the profile and the
models, and bounces, unsubscribes and complaints feed suppression, which is
why every one of them names the campaign and the message it is about.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, TypeAdapter

from schemas.common import Id, Url
from schemas.envelope import Envelope

__all__ = [
    "EMAIL_ADAPTER",
    "EmailBounce",
    "EmailClick",
    "EmailComplaint",
    "EmailDelivered",
    "EmailEvent",
    "EmailOpen",
    "EmailSent",
    "EmailUnsubscribe",
]


class _EmailEnvelope(Envelope):
    campaign_id: Id = Field(description="The campaign or trigger the message belongs to.")
    message_id: Id = Field(description="The ESP's id of the message sent to this customer.")


class EmailSent(_EmailEnvelope):
    """The ESP accepted the message for sending."""

    type: Literal["email_sent"] = "email_sent"


class EmailDelivered(_EmailEnvelope):
    """The receiving mail server accepted the message."""

    type: Literal["email_delivered"] = "email_delivered"


class EmailOpen(_EmailEnvelope):
    """The message was opened (as far as a tracking pixel can tell)."""

    type: Literal["email_open"] = "email_open"


class EmailClick(_EmailEnvelope):
    """A link in the message was clicked."""

    type: Literal["email_click"] = "email_click"
    url: Url | None = None


class EmailBounce(_EmailEnvelope):
    """The message bounced; a hard bounce suppresses the address."""

    type: Literal["email_bounce"] = "email_bounce"
    bounce_type: Literal["hard", "soft"]


class EmailUnsubscribe(_EmailEnvelope):
    """The customer unsubscribed through this message."""

    type: Literal["email_unsubscribe"] = "email_unsubscribe"


class EmailComplaint(_EmailEnvelope):
    """The customer marked this message as spam."""

    type: Literal["email_complaint"] = "email_complaint"


EmailEvent = Annotated[
    EmailSent
    | EmailDelivered
    | EmailOpen
    | EmailClick
    | EmailBounce
    | EmailUnsubscribe
    | EmailComplaint,
    Field(discriminator="type"),
]
"""Any event of the email topic, told apart by ``type``."""

EMAIL_ADAPTER: Final[TypeAdapter[EmailEvent]] = TypeAdapter(EmailEvent)
"""Validates and describes (JSON Schema) the email topic's messages."""
