"""Consent and attributes: what the customer told us, the latest word winning.

"Latest" is by event time, not arrival, so a replay or a late message gives
the same answer; two changes at the same instant are ordered by event id
(the larger wins), an arbitrary but deterministic choice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from schemas.common import UtcDatetime
from schemas.customers import ConsentChanged
from streams.core.frozen import FrozenModel

__all__ = ["Consent", "ConsentState", "Stamped", "fold_attribute", "fold_consent"]


class ConsentState(StrEnum):
    """Email marketing consent: never stated, granted, or revoked."""

    unknown = "unknown"
    granted = "granted"
    revoked = "revoked"


class Consent(FrozenModel):
    """The customer's email consent and the change that set it."""

    state: ConsentState = ConsentState.unknown
    changed_at: UtcDatetime | None = None
    event_id: str | None = None


class Stamped(NamedTuple):
    """An attribute value with the time and event that set it."""

    value: str
    at: UtcDatetime
    event_id: str


def _later(at: datetime, event_id: str, than_at: datetime | None, than_id: str | None) -> bool:
    if than_at is None or than_id is None:
        return True
    return (at, event_id) > (than_at, than_id)


def fold_consent(consent: Consent, event: ConsentChanged) -> Consent:
    """Take the change if it is the latest so far."""
    if not _later(event.occurred_at, event.event_id, consent.changed_at, consent.event_id):
        return consent
    state = ConsentState.granted if event.granted else ConsentState.revoked
    return Consent(state=state, changed_at=event.occurred_at, event_id=event.event_id)


def fold_attribute(
    current: Stamped | None, value: str | None, at: datetime, event_id: str
) -> Stamped | None:
    """Take ``value`` if given and the latest so far (``None`` means unchanged)."""
    if value is None:
        return current
    if current is not None and not _later(at, event_id, current.at, current.event_id):
        return current
    return Stamped(value, at, event_id)
