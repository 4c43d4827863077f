"""What the simulator yields: events for the topics, and the truth behind them.

Events are what a real shop would publish. Truth records say what Nudge can
never observe (a customer's latent intent, why a session ended as it did), so
that models and rules can be scored against it. Both are written as JSON
lines by one function each, so a file and a topic carry the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeAlias

import orjson

from schemas import InboundEvent, TopicKind, encode

__all__ = [
    "CustomerTruth",
    "Outcome",
    "Record",
    "SessionTruth",
    "SimulatedEvent",
    "encode_event_line",
    "event_line",
    "truth_line",
]

Outcome: TypeAlias = Literal["ordered", "abandoned_cart", "browsed_only"]
"""How a session ended: an order in it; a cart add but no order; neither."""


class SimulatedEvent(NamedTuple):
    """One event and the kind of topic it belongs on."""

    kind: TopicKind
    event: InboundEvent


@dataclass(frozen=True, slots=True)
class CustomerTruth:
    """A customer's latent traits at the start, and when (if ever) they were erased."""

    customer_id: str
    intent: float
    price_sensitivity: float
    responsiveness: float
    time_zone: str
    locale: str
    email_consent: bool
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionTruth:
    """One browsing session and how it ended.

    ``intent`` is the customer's intent when the session started (emails nudge
    it up); ``source`` tells a visit of its own accord from one that followed
    an email click.
    """

    session_id: str
    customer_id: str
    started_at: datetime
    ended_at: datetime
    outcome: Outcome
    intent: float
    source: Literal["organic", "email"]


Record: TypeAlias = SimulatedEvent | CustomerTruth | SessionTruth
"""Anything :func:`streams.simulator.shop.generate` yields."""


def event_line(kind: TopicKind, value: bytes) -> bytes:
    """One JSON line ``{"topic_kind": ..., "event": {...}}`` around an encoded event."""
    return b'{"topic_kind":"' + kind.value.encode() + b'","event":' + value + b"}\n"


def encode_event_line(record: SimulatedEvent) -> bytes:
    """Write a simulated event as one JSON line, as ``nudge replay`` reads it."""
    return event_line(record.kind, encode(record.event))


def _truth_fields(record: CustomerTruth | SessionTruth) -> dict[str, Any]:
    if isinstance(record, CustomerTruth):
        return {
            "record": "customer",
            "customer_id": record.customer_id,
            "intent": round(record.intent, 6),
            "price_sensitivity": round(record.price_sensitivity, 6),
            "responsiveness": round(record.responsiveness, 6),
            "time_zone": record.time_zone,
            "locale": record.locale,
            "email_consent": record.email_consent,
            "erased_at": record.erased_at,
        }
    return {
        "record": "session",
        "session_id": record.session_id,
        "customer_id": record.customer_id,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "outcome": record.outcome,
        "intent": round(record.intent, 6),
        "source": record.source,
    }


def truth_line(record: CustomerTruth | SessionTruth) -> bytes:
    """One JSON line for a truth record; times in UTC with a ``Z`` offset."""
    return orjson.dumps(_truth_fields(record), option=orjson.OPT_UTC_Z) + b"\n"
