"""Cart abandonment: a cart left with something in it.

Every change of the customer's open cart (add, remove) sets its deadline to
``cart_wait`` after the cart's last change; a checkout, an order closing the
cart, an empty cart, a cart worth less than ``cart_min_value`` or a cart
trigger less than ``cart_cooldown`` ago cancels it. At the deadline, one
candidate for the cart (the key is the cart id, so the trigger id is the
same however often the cart is offered: at most one email per cart reaches
the ESP) carrying its lines (at most ``cart_max_lines``), its line count and
its whole value.

Once per cart: a cart whose trigger was decided for good (sent, held out,
suppressed, capped without a second offer) is never offered again, also not
when it is still open and changes after the cooldown.

The reason reads "Cart of 2 items worth 120.00 EUR left 60 min without
checkout": the units in the whole cart, its value and ``cart_wait``.

Only the open cart is chased: a cart replaced by another one has no trigger,
and neither does a cart that was checked out (even if it stays open).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from schemas.cart import CartAdd, CartRemove, CheckoutStarted, OrderCompleted
from schemas.triggers import CartItem, CartPayload
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
    decided,
    minutes,
    tier,
    within,
)

if TYPE_CHECKING:
    from schemas.codec import InboundEvent
    from streams.core.cart import Cart
    from streams.core.profile import Profile

__all__ = ["TRIGGER_TYPE", "on_deadline", "on_event"]

TRIGGER_TYPE: Final = TriggerType.cart_abandonment


def _chaseable(profile: Profile, cart: Cart, due: datetime, config: TriggerConfig) -> bool:
    return (
        bool(cart.lines)
        and cart.checkout_started_at is None
        and cart.value >= config.cart_min_value
        and not within(profile.last_trigger_at.get(TRIGGER_TYPE), due, config.cart_cooldown)
        and not decided(profile, TRIGGER_TYPE, cart.cart_id)
    )


def _reason(cart: Cart, currency: str, config: TriggerConfig) -> str:
    units = sum(line.quantity for line in cart.lines.values())
    noun = "item" if units == 1 else "items"
    return (
        f"Cart of {units} {noun} worth {cart.value:.2f} {currency} "
        f"left {minutes(config.cart_wait)} without checkout"
    )


def on_event(
    profile: Profile,
    event: InboundEvent,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
) -> RuleResult:
    """Set, push back or cancel the open cart's deadline on a cart event or an order.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.cart import CartAdd
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> ten = datetime(2024, 5, 1, 10, tzinfo=UTC)
    >>> add = CartAdd(
    ...     event_id="e1", customer_id="c1", occurred_at=ten, cart_id="k1",
    ...     product_id="sku-1", quantity=1, unit_price=Decimal("20"), currency="EUR",
    ... )
    >>> profile = apply(None, add, ProfileConfig()).profile
    >>> result = on_event(profile, add, None, ten, TriggerConfig())
    >>> [(d.key, d.due_at.hour) for d in result.deadlines_set]
    [('k1', 11)]

    """
    if isinstance(event, OrderCompleted):
        closed = event.cart_id
        if closed is None and profile.cart is None and profile.closed_cart_ids:
            closed = profile.closed_cart_ids[-1]  # the open cart the order closed
        if closed is None:
            return EMPTY
        return RuleResult(
            deadlines_cancelled=(DeadlineKey(profile.customer_id, TRIGGER_TYPE, closed),)
        )
    if not isinstance(event, CartAdd | CartRemove | CheckoutStarted):
        return EMPTY
    cart = profile.cart
    if cart is None or cart.cart_id != event.cart_id:
        return EMPTY  # a stale event of a replaced or bought cart
    ref = DeadlineKey(profile.customer_id, TRIGGER_TYPE, cart.cart_id)
    due = cart.changed_at + config.cart_wait
    if not _chaseable(profile, cart, due, config):
        return RuleResult(deadlines_cancelled=(ref,))
    if due <= now:  # a late change whose deadline has already passed
        return EMPTY
    deadline = Deadline(customer_id=ref.customer_id, rule=ref.rule, key=ref.key, due_at=due)
    return RuleResult(deadlines_set=(deadline,))


def on_deadline(
    profile: Profile,
    deadline: Deadline,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
) -> RuleResult:
    """At the deadline: one candidate for the cart if it is still open, unchanged and worth it."""
    if now < deadline.due_at:
        return RuleResult(deadlines_set=(deadline,))
    cart = profile.cart
    if cart is None or cart.cart_id != deadline.key:
        return EMPTY
    due = cart.changed_at + config.cart_wait
    currency = cart.currency
    if currency is None or deadline.due_at < due or not _chaseable(profile, cart, due, config):
        return EMPTY
    items = [
        CartItem(product_id=product_id, quantity=line.quantity, unit_price=line.unit_price)
        for product_id, line in cart.lines.items()
    ]
    payload = CartPayload(
        cart_id=cart.cart_id,
        lines=tuple(items[: config.cart_max_lines]),
        line_count=len(items),
        value=cart.value,
        currency=currency,
    )
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
        reason=_reason(cart, currency, config),
        payload=payload,
    )
    return RuleResult(candidates=(candidate,))
