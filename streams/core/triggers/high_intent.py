"""High-intent discount: a shopper likely to buy, still browsing, has not bought yet.

An on-site event of the customer's current session, scored at or above
``high_intent_threshold``, with no order since the session started, gives a
candidate at once (no deadline): a discount offer of
``high_intent_discount_percent`` valid for ``high_intent_offer_validity``,
with the session's viewed products for context. At most one per
``high_intent_cooldown`` (``profile.last_trigger_at``).

One decision per session: the first qualifying event gives a candidate, and
once the policy has decided it, whatever the outcome, later events of the
session offer nothing (``profile.decided_keys``). So a customer who may not
be emailed gets one ``suppressed`` decision per session, not one per page
they open. A capped offer is not offered again either (its candidate says
``reoffer=False``): by the time the cap frees, the session it was for is
over.

The reason reads "Purchase propensity 0.86 ≥ 0.80 in a session without an
order": the score, rounded to two places, and ``high_intent_threshold``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from schemas.cart import CartAdd, CartRemove, CheckoutStarted
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.triggers import HighIntentPayload, Offer
from streams.core.triggers.base import (
    EMPTY,
    Candidate,
    Deadline,
    RuleResult,
    Score,
    ScoreLike,
    TriggerConfig,
    TriggerType,
    decided,
    in_session,
    session_key,
    tier,
    viewed_products,
    within,
)

if TYPE_CHECKING:
    from schemas.codec import InboundEvent
    from streams.core.profile import Profile

__all__ = ["TRIGGER_TYPE", "on_deadline", "on_event"]

TRIGGER_TYPE: Final = TriggerType.high_intent

_SITE_EVENTS: Final = (
    PageView,
    ProductView,
    CategoryView,
    Search,
    CartAdd,
    CartRemove,
    CheckoutStarted,
)


def on_event(
    profile: Profile,
    event: InboundEvent,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
) -> RuleResult:
    """Offer a discount when a session event scores at or above the threshold.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from schemas.clickstream import PageView
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> from streams.core.triggers.base import Score
    >>> ten = datetime(2024, 5, 1, 10, tzinfo=UTC)
    >>> page = PageView(
    ...     event_id="e1", customer_id="c1", occurred_at=ten, session_id="s1",
    ...     url="https://shop.example/",
    ... )
    >>> profile = apply(None, page, ProfileConfig()).profile
    >>> [c.payload.offer.discount_percent for c in on_event(
    ...     profile, page, Score(0.85, "m1"), ten, TriggerConfig()).candidates]
    [10]
    >>> on_event(profile, page, Score(0.79, "m1"), ten, TriggerConfig()).candidates
    ()

    """
    if score is None or score.probability < config.high_intent_threshold:
        return EMPTY
    if not isinstance(event, _SITE_EVENTS):
        return EMPTY
    session = profile.session
    if session is None or not in_session(session, event):
        return EMPTY
    at = event.occurred_at
    last_order = profile.purchases.last_order_at
    if last_order is not None and last_order >= session.started_at:
        return EMPTY
    if within(profile.last_trigger_at.get(TRIGGER_TYPE), at, config.high_intent_cooldown):
        return EMPTY
    key = session_key(session)
    if decided(profile, TRIGGER_TYPE, key):
        return EMPTY
    offer = Offer(
        discount_percent=config.high_intent_discount_percent,
        expires_at=at + config.high_intent_offer_validity,
    )
    candidate = Candidate(
        customer_id=profile.customer_id,
        trigger_type=TRIGGER_TYPE,
        key=key,
        occurred_at=at,
        offered_at=at,
        reoffer=False,
        tier=tier(score, config),
        score=Score.of(score),
        reason=(
            f"Purchase propensity {score.probability:.2f} ≥ "
            f"{config.high_intent_threshold:.2f} in a session without an order"
        ),
        payload=HighIntentPayload(
            offer=offer, products=viewed_products(session, config.high_intent_max_products)
        ),
    )
    return RuleResult(candidates=(candidate,))


def on_deadline(
    profile: Profile,
    deadline: Deadline,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
) -> RuleResult:
    """Nothing: this rule sets no deadlines and its candidates are not offered again."""
    return EMPTY
