"""What crosses a Nudge topic: event models, the codec, the dead letter.

Everything here is pure: no Faust, no Kafka, no clock (``now`` is always an
argument), so the same bytes decode to the same events in a test, a replay or
production. Agents use :func:`decode` and :func:`encode`; the models are the
vocabulary of the profile reducer and the rules.
"""

from schemas.cart import CartAdd, CartRemove, CheckoutStarted, OrderCompleted, OrderLine
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.codec import (
    DecodeError,
    DecodeLimits,
    DecodeReason,
    FieldError,
    InboundEvent,
    TopicKind,
    decode,
    encode,
)
from schemas.customers import ConsentChanged, CustomerErased, ProfileAttributes
from schemas.deadletter import (
    DeadLetter,
    DeadLetterFieldError,
    DeadLetterReason,
    SourceMessage,
    dead_letter_for_key_mismatch,
    dead_letter_from_error,
    dead_letter_from_exception,
    key_matches,
)
from schemas.email import (
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
)
from schemas.envelope import Envelope

__all__ = [
    "CartAdd",
    "CartRemove",
    "CategoryView",
    "CheckoutStarted",
    "ConsentChanged",
    "CustomerErased",
    "DeadLetter",
    "DeadLetterFieldError",
    "DeadLetterReason",
    "DecodeError",
    "DecodeLimits",
    "DecodeReason",
    "EmailBounce",
    "EmailClick",
    "EmailComplaint",
    "EmailDelivered",
    "EmailOpen",
    "EmailSent",
    "EmailUnsubscribe",
    "Envelope",
    "FieldError",
    "InboundEvent",
    "OrderCompleted",
    "OrderLine",
    "PageView",
    "ProductView",
    "ProfileAttributes",
    "Search",
    "SourceMessage",
    "TopicKind",
    "dead_letter_for_key_mismatch",
    "dead_letter_from_error",
    "dead_letter_from_exception",
    "decode",
    "encode",
    "key_matches",
]
