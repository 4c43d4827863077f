"""Browse abandonment: products looked at, nothing put in the cart.

A ``product_view`` at ``browse_min_price`` or more opens a deadline for the
session, ``browse_wait`` after the session's latest such view (each view
pushes it back: no email while the shopper is still browsing). Cart activity
(add, remove, checkout) in the session or an order before the deadline
cancels it: the cart rule takes over a session with a cart, and a buyer is
not chased. At the deadline, one candidate for the session carrying its
viewed products, most recent first, without repeats, at most
``browse_max_products``.

Not for a customer whose last order is less than ``browse_recent_order``
before the deadline (or any time after it), and at most one browse trigger
per ``browse_reentry`` (``profile.last_trigger_at``, written by the policy
for sent and held-out triggers). A session whose trigger was decided for
good (sent, held out, suppressed, capped without a second offer) is not
offered again, so a customer who may not be emailed and keeps viewing in
the same session gets one ``suppressed`` decision, not one per deadline.

The reason reads "Viewed 3 products (latest: sku-1, 89.00 EUR) and left 60
min ago without adding to cart": the session's products at the minimum
price or more, the latest of them, and ``browse_wait``.

If the customer has moved on to another session by the time the deadline
fires, there is no trigger: the new session has its own deadline, and the old
session's products are no longer in the profile.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from schemas.cart import CartAdd, CartRemove, CheckoutStarted, OrderCompleted
from schemas.clickstream import ProductView
from schemas.triggers import BrowsePayload, ViewedProduct
from streams.core.triggers.base import (
    EMPTY,
    Candidate,
    Deadline,
    DeadlineKey,
    RuleResult,
    Score,
    ScoreLike,
    TriggerConfig,
    TriggerType,
    clip,
    decided,
    in_session,
    minutes,
    session_key,
    tier,
    viewed_products,
    within,
)

if TYPE_CHECKING:
    from schemas.codec import InboundEvent
    from streams.core.profile import Profile
    from streams.core.session import Session

__all__ = ["TRIGGER_TYPE", "on_deadline", "on_event"]

TRIGGER_TYPE: Final = TriggerType.browse_abandonment


def _due(session: Session, config: TriggerConfig) -> datetime | None:
    # The latest qualifying view plus the wait; products are most recent first.
    for seen in session.products:
        if seen.price >= config.browse_min_price:
            return seen.viewed_at + config.browse_wait
    return None


def _carted(profile: Profile, session: Session, until: datetime) -> bool:
    # The cart's last change (add, remove, checkout) fell within the session.
    cart = profile.cart
    return cart is not None and session.started_at <= cart.changed_at < until


def _blocked(profile: Profile, key: str, at: datetime, config: TriggerConfig) -> bool:
    last_order = profile.purchases.last_order_at
    if last_order is not None and last_order > at - config.browse_recent_order:
        return True
    if decided(profile, TRIGGER_TYPE, key):
        return True
    return within(profile.last_trigger_at.get(TRIGGER_TYPE), at, config.browse_reentry)


def _reason(session: Session, latest: ViewedProduct, config: TriggerConfig) -> str:
    # Counts the session's products at the minimum price or more (the payload
    # may carry fewer); the latest is the first product the email shows.
    count = sum(1 for seen in session.products if seen.price >= config.browse_min_price)
    noun = "product" if count == 1 else "products"
    return (
        f"Viewed {count} {noun} (latest: {clip(latest.product_id)}, "
        f"{latest.price:.2f} {latest.currency}) and left {minutes(config.browse_wait)} ago "
        "without adding to cart"
    )


def on_event(
    profile: Profile,
    event: InboundEvent,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
) -> RuleResult:
    """Open or push back the session's deadline on a view; cancel it on cart activity or order.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from decimal import Decimal
    >>> from schemas.clickstream import ProductView
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> ten = datetime(2024, 5, 1, 10, tzinfo=UTC)
    >>> view = ProductView(
    ...     event_id="e1", customer_id="c1", occurred_at=ten, session_id="s1",
    ...     product_id="sku-1", price=Decimal("20"), currency="EUR",
    ... )
    >>> profile = apply(None, view, ProfileConfig()).profile
    >>> result = on_event(profile, view, None, ten, TriggerConfig())
    >>> [(d.rule.value, d.key, d.due_at.hour) for d in result.deadlines_set]
    [('browse_abandonment', 's1', 11)]

    """
    if not isinstance(event, ProductView | CartAdd | CartRemove | CheckoutStarted | OrderCompleted):
        return EMPTY
    session = profile.session
    if session is None:
        return EMPTY
    if not isinstance(event, OrderCompleted) and not in_session(session, event):
        return EMPTY  # a late event of an earlier session
    due = _due(session, config)
    if due is None:
        return EMPTY
    ref = DeadlineKey(profile.customer_id, TRIGGER_TYPE, session_key(session))
    if isinstance(event, ProductView):
        if event.price < config.browse_min_price:
            return EMPTY
        if _carted(profile, session, due) or _blocked(profile, ref.key, due, config):
            return RuleResult(deadlines_cancelled=(ref,))
        if due <= now:  # a late view: its deadline has already passed
            return EMPTY
        deadline = Deadline(customer_id=ref.customer_id, rule=ref.rule, key=ref.key, due_at=due)
        return RuleResult(deadlines_set=(deadline,))
    if isinstance(event, OrderCompleted):
        if event.occurred_at <= due - config.browse_recent_order:
            return EMPTY
        return RuleResult(deadlines_cancelled=(ref,))
    if event.occurred_at >= due:  # cart activity too late to cancel: the deadline won
        return EMPTY
    return RuleResult(deadlines_cancelled=(ref,))


def on_deadline(
    profile: Profile,
    deadline: Deadline,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
) -> RuleResult:
    """At the deadline: one candidate for the session, unless anything since rules it out."""
    if now < deadline.due_at:
        return RuleResult(deadlines_set=(deadline,))
    session = profile.session
    if session is None or session_key(session) != deadline.key:
        return EMPTY
    due = _due(session, config)
    if due is None or deadline.due_at < due:  # a later view moved the deadline
        return EMPTY
    if _carted(profile, session, deadline.due_at) or _blocked(profile, deadline.key, due, config):
        return EMPTY
    products = viewed_products(session, config.browse_max_products, config.browse_min_price)
    candidate = Candidate(
        customer_id=profile.customer_id,
        trigger_type=TRIGGER_TYPE,
        key=deadline.key,
        occurred_at=due,
        offered_at=deadline.due_at,
        attempt=deadline.attempt,
        reoffer=True,
        tier=tier(score, config),
        score=Score.of(score),
        reason=_reason(session, products[0], config),
        payload=BrowsePayload(products=products),
    )
    return RuleResult(candidates=(candidate,))
