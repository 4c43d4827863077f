"""The customer profile: everything the rules and models know about one customer.

A :class:`Profile` is stored in a Kafka-changelogged table and rewritten on
every event, so it stays compact and bounded: recent-only lists have fixed
bounds (the last few decided trigger keys among them), and the only
collections that grow with the customer's history are the order ids and
purchase days (one entry per order and per purchase day) and the trigger
types sent.

An erased customer is a :class:`Tombstone`: the id and the time of erasure,
nothing personal. The table holds either; :func:`state_from_bytes` reads
either back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import Field, TypeAdapter

from schemas.common import UtcDatetime
from streams.core.attributes import Consent, Stamped
from streams.core.cart import Cart
from streams.core.engagement import Engagement, EngagementRates, engagement_rates
from streams.core.frozen import FrozenModel
from streams.core.purchases import Purchases, PurchaseSummary, purchase_summary
from streams.core.rfm import Segment
from streams.core.session import Session

__all__ = [
    "DECIDED_KEYS_KEPT",
    "EngagementRates",
    "Profile",
    "PurchaseSummary",
    "StoredScore",
    "Tombstone",
    "engagement_rates",
    "purchase_summary",
    "record_decided",
    "record_score",
    "record_trigger",
    "state_from_bytes",
]

DECIDED_KEYS_KEPT: Final = 2
"""Decided trigger keys kept per trigger type (see :attr:`Profile.decided_keys`).

Rules only chase the open cart and the current session, so the latest key
covers one device; the one before covers two devices taking turns (their
sessions, or their carts, replacing each other back and forth). Each kept
key costs its length plus a few bytes on every changelog write.
"""


class StoredScore(FrozenModel):
    """A model's latest score for the customer, and which model gave it when."""

    probability: float = Field(ge=0.0, le=1.0)
    model_version: str
    scored_at: UtcDatetime


class Profile(FrozenModel):
    """One customer's live profile.

    ``recent_event_ids`` holds the last ``dedupe_window`` distinct event ids
    applied, oldest first, to drop redelivered events. A duplicate older than
    the customer's last N distinct events is not recognised and is applied
    again, except an order, which is always recognised by its ``order_id``.

    ``segment`` is the RFM segment as of ``segment_as_of``, the customer's
    latest event time (``last_seen``), so the stored value depends on the
    events only, never on when they were processed. A segment as of *now*
    (which drifts as time passes) is :func:`streams.core.rfm.rfm_scores` with
    ``as_of=now``.

    ``last_trigger_at`` holds, per trigger type, when the latest one was
    sent (or held out): the rules' cooldowns and the frequency cap read it.
    ``decided_keys`` holds, per trigger type, the keys (cart or session) of
    the last :data:`DECIDED_KEYS_KEPT` triggers whose decision was final,
    oldest first, so that a rule offers each key once: a cart still open
    after the cooldown, or a session that keeps qualifying, does not make a
    second decision about the same trigger id.
    """

    kind: Literal["profile"] = "profile"
    customer_id: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    events_applied: int = 0
    recent_event_ids: tuple[str, ...] = ()
    purchases: Purchases = Field(default_factory=Purchases)
    engagement: Engagement = Field(default_factory=Engagement)
    session: Session | None = None
    cart: Cart | None = None
    closed_cart_ids: tuple[str, ...] = ()
    email_consent: Consent = Field(default_factory=Consent)
    time_zone: Stamped | None = None
    locale: Stamped | None = None
    last_trigger_at: dict[str, UtcDatetime] = Field(default_factory=dict)
    decided_keys: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    scores: dict[str, StoredScore] = Field(default_factory=dict)
    segment: Segment
    segment_as_of: UtcDatetime


class Tombstone(FrozenModel):
    """What remains of an erased customer: the id, and when it was erased.

    Erasure is final: any later event for the id is ignored, so a customer
    who registers again needs a new customer id.
    """

    kind: Literal["tombstone"] = "tombstone"
    customer_id: str
    erased_at: UtcDatetime


_STATE: Final[TypeAdapter[Profile | Tombstone]] = TypeAdapter(
    Annotated[Profile | Tombstone, Field(discriminator="kind")]
)


def state_from_bytes(raw: bytes) -> Profile | Tombstone:
    """Read a stored profile or tombstone (what their ``to_bytes`` wrote)."""
    return _STATE.validate_json(raw)


def record_score(
    profile: Profile, model: str, probability: float, model_version: str, at: datetime
) -> Profile:
    """Keep ``model``'s newest score (by event time ``at``) in the profile."""
    previous = profile.scores.get(model)
    if previous is not None and previous.scored_at > at:
        return profile
    stored = _stored_score(probability, model_version, at)
    scores = dict(sorted({**profile.scores, model: stored}.items()))
    return profile.updated({"scores": scores})


def _stored_score(probability: float, model_version: str, at: datetime) -> StoredScore:
    """Build a score, validated only when it may not already be valid (a score per event)."""
    valid = (
        type(probability) is float
        and 0.0 <= probability <= 1.0
        and type(model_version) is str
        and at.tzinfo is UTC  # validation would return ``at`` itself
    )
    build = StoredScore.from_valid if valid else StoredScore
    return build(probability=probability, model_version=model_version, scored_at=at)


def record_trigger(profile: Profile, trigger_type: str, at: datetime) -> Profile:
    """Remember that a trigger of ``trigger_type`` was sent at ``at`` (the latest time wins).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> at = datetime(2024, 5, 1, tzinfo=UTC)
    >>> profile = Profile(
    ...     customer_id="c1", first_seen=at, last_seen=at, segment="prospect", segment_as_of=at
    ... )
    >>> record_trigger(profile, "abandoned_cart", at).last_trigger_at
    {'abandoned_cart': datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.timezone.utc)}

    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be timezone-aware")
    at = at.astimezone(UTC)
    previous = profile.last_trigger_at.get(trigger_type)
    if previous is not None and previous >= at:
        return profile
    triggers = dict(sorted({**profile.last_trigger_at, trigger_type: at}.items()))
    return profile.updated({"last_trigger_at": triggers})


def record_decided(profile: Profile, trigger_type: str, key: str) -> Profile:
    """Remember that the trigger of ``trigger_type`` about ``key`` was decided for good.

    Only the last :data:`DECIDED_KEYS_KEPT` keys of each type are kept.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> at = datetime(2024, 5, 1, tzinfo=UTC)
    >>> profile = Profile(
    ...     customer_id="c1", first_seen=at, last_seen=at, segment="prospect", segment_as_of=at
    ... )
    >>> for cart in ("k1", "k2", "k1", "k3"):
    ...     profile = record_decided(profile, "cart_abandonment", cart)
    >>> profile.decided_keys
    {'cart_abandonment': ('k2', 'k3')}

    """
    kept = profile.decided_keys.get(trigger_type, ())
    if key in kept:
        return profile
    keys = (*kept, key)[-DECIDED_KEYS_KEPT:]
    decided = dict(sorted({**profile.decided_keys, trigger_type: keys}.items()))
    return profile.updated({"decided_keys": decided})
