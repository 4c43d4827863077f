"""Email engagement and deliverability: what the ESP's webhooks told us.

Counts, last times and decayed counts are order-independent, so a webhook
that arrives late lands where it belongs:

* a decayed count keeps a reference time, the latest event time folded in.
  An event at ``t >= ref`` decays the value to ``t`` and adds 1; an event at
  ``t < ref`` adds its own weight ``exp(-(ref - t) / tau)``. Either way the
  value is ``sum(exp(-(ref - t_i) / tau))``, equal for every arrival order up
  to float rounding (a relative 1e-12 or so, not bit for bit).
* the soft-bounce streak is the set of soft bounces not followed, in event
  time, by a delivery, open or click (the latest ``max_soft_bounces`` of them,
  so the streak saturates there; an address that bounced that often is
  undeliverable anyway).
* the first hard bounce counts (it suppresses for good); unsubscribe and
  complaint keep their latest time, so a consent granted later can be told
  apart from one granted before.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, NamedTuple, TypeAlias

from schemas.common import UtcDatetime
from schemas.email import (
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
)
from streams.core.frozen import FrozenModel

if TYPE_CHECKING:
    from streams.core.profile import Profile

__all__ = [
    "TAU_7D",
    "TAU_30D",
    "Decayed",
    "EmailEvent",
    "Engagement",
    "EngagementRates",
    "engagement_rates",
    "fold_email",
]

TAU_7D: Final = timedelta(days=7)
"""Time constant of the short decayed counts: an event weighs 1/e after 7 days."""

TAU_30D: Final = timedelta(days=30)
"""Time constant of the long decayed counts."""

_TAU_7D_S: Final = TAU_7D.total_seconds()
_TAU_30D_S: Final = TAU_30D.total_seconds()

EmailEvent: TypeAlias = (
    EmailSent
    | EmailDelivered
    | EmailOpen
    | EmailClick
    | EmailBounce
    | EmailUnsubscribe
    | EmailComplaint
)


class Decayed(NamedTuple):
    """Exponentially decayed counts (7 and 30 days) of one kind of event, as of ``at``."""

    at: UtcDatetime
    d7: float
    d30: float


def _fold_decayed(decayed: Decayed | None, at: datetime) -> Decayed:
    if decayed is None:
        return Decayed(at, 1.0, 1.0)
    gap = (at - decayed.at).total_seconds()
    if gap >= 0:
        return Decayed(
            at,
            decayed.d7 * math.exp(-gap / _TAU_7D_S) + 1.0,
            decayed.d30 * math.exp(-gap / _TAU_30D_S) + 1.0,
        )
    return Decayed(
        decayed.at,
        decayed.d7 + math.exp(gap / _TAU_7D_S),
        decayed.d30 + math.exp(gap / _TAU_30D_S),
    )


def _decayed_to(decayed: Decayed | None, as_of: datetime) -> tuple[float, float]:
    # An as_of before the reference time is read at the reference time: the
    # value is never "un-decayed", which would weigh later events above 1.
    if decayed is None:
        return 0.0, 0.0
    gap = max(0.0, (as_of - decayed.at).total_seconds())
    return decayed.d7 * math.exp(-gap / _TAU_7D_S), decayed.d30 * math.exp(-gap / _TAU_30D_S)


def _latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None else max(current, at)


class Engagement(FrozenModel):
    """Email counts, decayed counts and deliverability of one customer.

    ``soft_bounces`` holds the times of the current soft-bounce streak,
    oldest first; a delivery, open or click later than a bounce ends it.
    """

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    last_sent_at: UtcDatetime | None = None
    last_delivered_at: UtcDatetime | None = None
    last_opened_at: UtcDatetime | None = None
    last_clicked_at: UtcDatetime | None = None
    sends_decayed: Decayed | None = None
    opens_decayed: Decayed | None = None
    clicks_decayed: Decayed | None = None
    hard_bounced_at: UtcDatetime | None = None
    soft_bounces: tuple[UtcDatetime, ...] = ()
    unsubscribed_at: UtcDatetime | None = None
    complained_at: UtcDatetime | None = None

    @property
    def hard_bounced(self) -> bool:
        """Whether the address ever bounced hard."""
        return self.hard_bounced_at is not None

    @property
    def unsubscribed(self) -> bool:
        """Whether the customer ever unsubscribed (compare with consent times)."""
        return self.unsubscribed_at is not None

    @property
    def complained(self) -> bool:
        """Whether the customer ever marked a message as spam."""
        return self.complained_at is not None

    @property
    def soft_bounce_streak(self) -> int:
        """Consecutive soft bounces (by event time) since the last sign of delivery."""
        return len(self.soft_bounces)

    @property
    def last_engaged_at(self) -> datetime | None:
        """The latest delivery, open or click: the proof the address works."""
        times = [
            at
            for at in (self.last_delivered_at, self.last_opened_at, self.last_clicked_at)
            if at is not None
        ]
        return max(times, default=None)


def _end_streak(bounces: tuple[datetime, ...], at: datetime) -> tuple[datetime, ...]:
    # A sign of delivery at `at` ends the bounces strictly before it.
    if not bounces or bounces[0] >= at:
        return bounces
    return bounces[bisect.bisect_left(bounces, at) :]


def _soft_bounce(engagement: Engagement, at: datetime, bound: int) -> tuple[datetime, ...]:
    engaged = engagement.last_engaged_at
    if engaged is not None and at < engaged:
        return engagement.soft_bounces
    bounces = list(engagement.soft_bounces)
    bisect.insort(bounces, at)
    return tuple(bounces[-bound:])


def fold_email(engagement: Engagement, event: EmailEvent, max_soft_bounces: int) -> Engagement:
    """Fold one email event into the customer's engagement."""
    at = event.occurred_at
    update: dict[str, object]
    match event:
        case EmailSent():
            update = {
                "sent": engagement.sent + 1,
                "last_sent_at": _latest(engagement.last_sent_at, at),
                "sends_decayed": _fold_decayed(engagement.sends_decayed, at),
            }
        case EmailDelivered():
            update = {
                "delivered": engagement.delivered + 1,
                "last_delivered_at": _latest(engagement.last_delivered_at, at),
                "soft_bounces": _end_streak(engagement.soft_bounces, at),
            }
        case EmailOpen():
            update = {
                "opened": engagement.opened + 1,
                "last_opened_at": _latest(engagement.last_opened_at, at),
                "opens_decayed": _fold_decayed(engagement.opens_decayed, at),
                "soft_bounces": _end_streak(engagement.soft_bounces, at),
            }
        case EmailClick():
            update = {
                "clicked": engagement.clicked + 1,
                "last_clicked_at": _latest(engagement.last_clicked_at, at),
                "clicks_decayed": _fold_decayed(engagement.clicks_decayed, at),
                "soft_bounces": _end_streak(engagement.soft_bounces, at),
            }
        case EmailBounce(bounce_type="hard"):
            first = engagement.hard_bounced_at
            update = {"hard_bounced_at": at if first is None else min(first, at)}
        case EmailBounce():
            update = {"soft_bounces": _soft_bounce(engagement, at, max_soft_bounces)}
        case EmailUnsubscribe():
            update = {"unsubscribed_at": _latest(engagement.unsubscribed_at, at)}
        case EmailComplaint():
            update = {"complained_at": _latest(engagement.complained_at, at)}
    return engagement.updated(update)


@dataclass(frozen=True, slots=True)
class EngagementRates:
    """Decayed open and click rates: decayed opens (clicks) over decayed sends.

    A ratio of decayed counts, not a probability: an open weighs more than
    the older send it answers, and several opens of one message all count,
    so a rate can exceed 1.
    """

    open_rate_7d: float
    click_rate_7d: float
    open_rate_30d: float
    click_rate_30d: float


def _rate(count: float, sends: float) -> float:
    return count / sends if sends > 0.0 else 0.0


def engagement_rates(profile: Profile, as_of: datetime) -> EngagementRates:
    """Decayed open and click rates over 7 and 30 days, as of ``as_of``.

    All zeros while no send was seen (or every send has decayed to nothing).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from schemas.email import EmailOpen, EmailSent
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> at = datetime(2024, 5, 1, 9, tzinfo=UTC)
    >>> ids = {"customer_id": "c1", "occurred_at": at, "campaign_id": "k", "message_id": "m"}
    >>> profile = apply(None, EmailSent(event_id="e1", **ids), ProfileConfig()).profile
    >>> profile = apply(profile, EmailOpen(event_id="e2", **ids), ProfileConfig()).profile
    >>> engagement_rates(profile, datetime(2024, 5, 8, 9, tzinfo=UTC)).open_rate_7d
    1.0

    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("`as_of` must be timezone-aware")
    engagement = profile.engagement
    sends7, sends30 = _decayed_to(engagement.sends_decayed, as_of)
    opens7, opens30 = _decayed_to(engagement.opens_decayed, as_of)
    clicks7, clicks30 = _decayed_to(engagement.clicks_decayed, as_of)
    return EngagementRates(
        open_rate_7d=_rate(opens7, sends7),
        click_rate_7d=_rate(clicks7, sends7),
        open_rate_30d=_rate(opens30, sends30),
        click_rate_30d=_rate(clicks30, sends30),
    )
