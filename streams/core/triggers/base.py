"""What every trigger rule speaks: scores, settings, deadlines, candidates, results.

A rule is two pure functions with one signature for all rules::

    on_event(profile, event, score, now, config) -> RuleResult
    on_deadline(profile, deadline, score, now, config) -> RuleResult

``profile`` is the customer's profile *with the event already applied* (the
shell runs the reducer first), ``score`` the customer's latest purchase
propensity (None before any model scored them) and ``now`` the shell's event
clock (the partition watermark, see :mod:`streams.core.clock`). A rule
returns candidate triggers for the policy and the deadlines to set or
cancel; it never reads a clock and never decides whether an email may go
out (that is :mod:`streams.core.policy`).

Time conventions, shared by every rule:

* Rules judge in event time. A candidate's ``occurred_at`` is the event's
  time or the deadline's due time, never ``now``, so a replay gives the same
  candidates whenever the shell gets round to them.
* Windows are half-open: an event exactly ``wait`` after a view is too late
  to cancel it (the deadline wins the tie); a last trigger exactly
  ``reentry`` ago no longer blocks. Cooldowns look both ways in time
  (``|t - last| < window``), so an out-of-order decision cannot slip in
  before a trigger already recorded.
* A deadline that would be due at or before ``now`` is never set: a late
  event does not fire a deadline already passed.
* Setting a deadline replaces the pending one with the same
  :class:`DeadlineKey`; cancelling one that is not pending does nothing.

One decision per key: once the policy has decided a rule's trigger about a
key (a cart, a session) for good, whatever the outcome, the rule offers that
key no more (:func:`decided`); only a capped trigger the policy offers once
more stays open until that second offer is decided.

Every candidate carries a ``reason``: one sentence built from the same
inputs as its payload (counts, product ids, amounts, the rule's windows and
thresholds), never from anything personal. A product id is cut to
:data:`MAX_REASON_ID_CHARS`, which keeps every sentence well under
:data:`~schemas.triggers.MAX_REASON_CHARS` (ids may be 128 characters).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, TypeAlias

from pydantic import Field

from schemas.common import UtcDatetime
from schemas.triggers import (
    Reason,
    Tier,
    TriggerPayload,
    TriggerType,
    ViewedProduct,
    trigger_id,
)
from streams.core.frozen import FrozenModel

if TYPE_CHECKING:
    from schemas.codec import InboundEvent
    from streams.core.profile import Profile
    from streams.core.session import Session

__all__ = [
    "EMPTY",
    "MAX_REASON_ID_CHARS",
    "Candidate",
    "Deadline",
    "DeadlineKey",
    "OnDeadline",
    "OnEvent",
    "Rule",
    "RuleResult",
    "Score",
    "ScoreLike",
    "Tier",
    "TriggerConfig",
    "TriggerType",
    "clip",
    "decided",
    "minutes",
    "session_key",
    "tier",
    "viewed_products",
    "within",
]


class ScoreLike(Protocol):
    """Anything with a probability and a model version (the model package's ``Score``)."""

    @property
    def probability(self) -> float:
        """Purchase propensity in [0, 1]."""
        ...

    @property
    def model_version(self) -> str:
        """The model (or ``"prior"``) that produced it."""
        ...


@dataclass(frozen=True, slots=True)
class Score:
    """A purchase-propensity score as the rules keep it in a candidate."""

    probability: float
    model_version: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.probability) and 0.0 <= self.probability <= 1.0):
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")

    @classmethod
    def of(cls, score: ScoreLike | None) -> Score | None:
        """Copy any score-like value (None stays None)."""
        if score is None or isinstance(score, Score):
            return score
        return cls(float(score.probability), str(score.model_version))


def _positive(name: str, value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """Every threshold and window of the rules and the tiers (defaults from issue 5)."""

    browse_wait: timedelta = timedelta(minutes=60)
    """A product view with no cart activity or order for this long is an abandoned browse."""
    browse_min_price: Decimal = Decimal(0)
    """Views of cheaper products neither open a deadline nor appear in the email."""
    browse_max_products: int = 5
    """Products carried by a browse trigger, most recent first."""
    browse_recent_order: timedelta = timedelta(days=10)
    """No browse trigger for a customer whose last order is more recent than this."""
    browse_reentry: timedelta = timedelta(days=14)
    """At most one browse trigger per customer in this window."""
    cart_wait: timedelta = timedelta(minutes=60)
    """A non-empty cart unchanged, unchecked-out and unordered this long is abandoned."""
    cart_min_value: Decimal = Decimal(0)
    """Carts worth less are not chased."""
    cart_cooldown: timedelta = timedelta(days=7)
    """At most one cart trigger per customer in this window."""
    cart_max_lines: int = 20
    """Cart lines carried by a cart trigger (``line_count`` and ``value`` count them all)."""
    high_intent_threshold: float = 0.8
    """A score at or above this during a session with no order yet earns a discount offer."""
    high_intent_cooldown: timedelta = timedelta(days=7)
    """At most one discount offer per customer in this window."""
    high_intent_discount_percent: int = 10
    """The discount offered."""
    high_intent_offer_validity: timedelta = timedelta(hours=48)
    """How long the offer holds, from the event that earned it."""
    high_intent_max_products: int = 5
    """Session products carried by a discount offer, for context."""
    tier_vip_above: float = 0.8
    """Scores strictly above this are ``vip``."""
    tier_discount_from: float = 0.4
    """Scores from this (inclusive) up to ``tier_vip_above`` (inclusive) are ``discount``."""

    def __post_init__(self) -> None:
        for name in ("browse_wait", "browse_recent_order", "browse_reentry", "cart_wait"):
            _positive(name, getattr(self, name))
        for name in ("cart_cooldown", "high_intent_cooldown", "high_intent_offer_validity"):
            _positive(name, getattr(self, name))
        if min(self.browse_max_products, self.cart_max_lines, self.high_intent_max_products) < 1:
            raise ValueError("product and line bounds must be at least 1")
        if max(self.browse_max_products, self.cart_max_lines, self.high_intent_max_products) > 100:
            raise ValueError("a trigger carries at most 100 products or lines")
        if self.browse_min_price < 0 or self.cart_min_value < 0:
            raise ValueError("minimum price and cart value must not be negative")
        if not 0.0 <= self.high_intent_threshold <= 1.0:
            raise ValueError("high_intent_threshold must be in [0, 1]")
        if not 1 <= self.high_intent_discount_percent <= 100:
            raise ValueError("high_intent_discount_percent must be in [1, 100]")
        if not 0.0 <= self.tier_discount_from <= self.tier_vip_above <= 1.0:
            raise ValueError("need 0 <= tier_discount_from <= tier_vip_above <= 1")


def tier(score: ScoreLike | None, config: TriggerConfig) -> Tier:
    """Map a score to its journey tier: vip, discount or educational.

    Above ``tier_vip_above`` is ``vip``; from ``tier_discount_from`` up to
    and including ``tier_vip_above`` is ``discount``; below is
    ``educational``. So the lower boundary belongs to the upper tier and the
    upper one does not: with the defaults, 0.4 and 0.8 are both
    ``discount``. No score at all is ``educational``: without evidence of
    intent, offer content, not money.

    Examples
    --------
    >>> config = TriggerConfig()
    >>> [tier(Score(p, "m1"), config).value for p in (0.39, 0.4, 0.8, 0.81)]
    ['educational', 'discount', 'discount', 'vip']
    >>> tier(None, config).value
    'educational'

    """
    if score is None:
        return Tier.educational
    if score.probability > config.tier_vip_above:
        return Tier.vip
    if score.probability >= config.tier_discount_from:
        return Tier.discount
    return Tier.educational


class DeadlineKey(NamedTuple):
    """What identifies a pending deadline: at most one per customer, rule and key."""

    customer_id: str
    rule: TriggerType
    key: str


class Deadline(FrozenModel):
    """A rule asks to be called back at ``due_at`` (event time) about ``key``.

    ``key`` is the session or cart the deadline is about. ``attempt`` is 1
    for the second offer of a trigger the frequency cap held back (see
    :func:`streams.core.policy.reoffer`). The shell keeps pending deadlines
    (they survive restarts: :meth:`to_bytes`), drops a customer's on erasure,
    and calls the rule's ``on_deadline`` once its clock reaches ``due_at``.
    """

    customer_id: str
    rule: TriggerType
    key: str
    due_at: UtcDatetime
    attempt: int = Field(default=0, ge=0, le=1)

    @property
    def ref(self) -> DeadlineKey:
        """The slot this deadline occupies in the shell's deadline store."""
        return DeadlineKey(self.customer_id, self.rule, self.key)


class Candidate(FrozenModel):
    """A trigger a rule wants to send; the policy decides whether it goes.

    ``occurred_at`` is the event time that caused it: the event, or the
    deadline it waited for. ``offered_at`` is when it is offered to the
    policy: the same, except for a second offer after the frequency cap
    (``attempt`` 1). ``reoffer`` says whether a capped candidate may be
    offered once more (an offer about a session that is over would be
    stale). ``reason`` says why the rule fired, for people reading the
    trigger or its decision.
    """

    customer_id: str
    trigger_type: TriggerType
    key: str
    occurred_at: UtcDatetime
    offered_at: UtcDatetime
    attempt: int = Field(default=0, ge=0, le=1)
    reoffer: bool
    tier: Tier
    score: Score | None
    reason: Reason
    payload: TriggerPayload

    @property
    def trigger_id(self) -> str:
        """The deterministic id of the trigger (customer, type, key)."""
        return trigger_id(self.customer_id, self.trigger_type, self.key)


@dataclass(frozen=True, slots=True)
class RuleResult:
    """What a rule returns: candidates for the policy, deadlines to set and to cancel."""

    candidates: tuple[Candidate, ...] = ()
    deadlines_set: tuple[Deadline, ...] = ()
    deadlines_cancelled: tuple[DeadlineKey, ...] = ()

    def __add__(self, other: RuleResult) -> RuleResult:
        return RuleResult(
            self.candidates + other.candidates,
            self.deadlines_set + other.deadlines_set,
            self.deadlines_cancelled + other.deadlines_cancelled,
        )


EMPTY: Final = RuleResult()
"""Nothing to do."""

MAX_REASON_ID_CHARS: Final = 40
"""Longest product id a reason quotes; longer ones are cut (see :func:`clip`)."""

OnEvent: TypeAlias = Callable[
    ["Profile", "InboundEvent", ScoreLike | None, datetime, TriggerConfig], RuleResult
]
"""``on_event(profile, event, score, now, config)``: the profile has the event applied."""

OnDeadline: TypeAlias = Callable[
    ["Profile", Deadline, ScoreLike | None, datetime, TriggerConfig], RuleResult
]
"""``on_deadline(profile, deadline, score, now, config)``."""


class Rule(NamedTuple):
    """One trigger rule: the type it produces and its two entry points."""

    trigger_type: TriggerType
    on_event: OnEvent
    on_deadline: OnDeadline


def within(last: datetime | None, at: datetime, window: timedelta) -> bool:
    """Tell whether ``last`` is less than ``window`` away from ``at`` (either side)."""
    return last is not None and abs(at - last) < window


def decided(profile: Profile, trigger_type: TriggerType, key: str) -> bool:
    """Tell whether the trigger of ``trigger_type`` about ``key`` was already decided for good."""
    return key in profile.decided_keys.get(trigger_type, ())


def clip(text: str) -> str:
    """Cut an id a reason quotes to :data:`MAX_REASON_ID_CHARS`; an ellipsis marks the cut."""
    limit = MAX_REASON_ID_CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"


def minutes(window: timedelta) -> str:
    """Write a window as whole minutes for a reason: ``"60 min"``."""
    return f"{window // timedelta(minutes=1)} min"


def session_key(session: Session) -> str:
    """Name a session: its id, or its start time when the tracker sends none."""
    if session.session_id is not None:
        return session.session_id
    return f"session@{session.started_at.isoformat()}"


def in_session(session: Session | None, event: InboundEvent) -> bool:
    """Tell whether ``event`` belongs to ``session`` (not to an earlier one, arriving late)."""
    if session is None or event.occurred_at < session.started_at:
        return False
    return event.session_id is None or event.session_id == session.session_id


def viewed_products(
    session: Session, limit: int, min_price: Decimal = Decimal(0)
) -> tuple[ViewedProduct, ...]:
    """List the session's viewed products at ``min_price`` or more: most recent first, unique."""
    products: list[ViewedProduct] = []
    for seen in session.products:  # already most recent first and deduplicated
        if seen.price < min_price:
            continue
        # Built without validation: every field was validated when the view
        # event was decoded, and validating again costs 5 us a product.
        products.append(
            ViewedProduct.model_construct(
                product_id=seen.product_id,
                price=seen.price,
                currency=seen.currency,
                category=seen.category,
                viewed_at=seen.viewed_at,
            )
        )
        if len(products) == limit:
            break
    return tuple(products)
