"""Attribution: which triggers an order is credited to, treated or held out.

An order within the attribution window after a trigger (sent, deferred or
held out) counts as a conversion of that trigger type in the customer's arm.
Held-out customers are recorded exactly like treated ones (the policy keeps
their trigger times), so conversion rates of the two arms compare like with
like and their ratio is the lift the emails bring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from schemas.cart import OrderCompleted
from schemas.triggers import Arm
from streams.core.policy import in_holdout
from streams.core.profile import Profile


@dataclass(frozen=True, slots=True)
class Conversion:
    """One order credited to one trigger type, in the customer's experiment arm."""

    trigger_type: str
    arm: Arm


def conversions(
    before: Profile | None,
    order: OrderCompleted,
    window: timedelta,
    salt: str,
    holdout_share: float,
) -> tuple[Conversion, ...]:
    """Credit ``order`` to every trigger type recorded within ``window`` before it.

    ``before`` is the profile before the order was applied (a repeated order
    is never applied, so it is never credited twice).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.cart import OrderLine
    >>> at = datetime(2024, 5, 3, tzinfo=UTC)
    >>> sent = {"cart_abandonment": datetime(2024, 5, 1, tzinfo=UTC)}
    >>> profile = Profile(customer_id="c1", first_seen=at, last_seen=at, segment="prospect",
    ...     segment_as_of=at, last_trigger_at=sent)
    >>> order = OrderCompleted(event_id="e", customer_id="c1", occurred_at=at, order_id="o1",
    ...     lines=(OrderLine(product_id="p", quantity=1, unit_price=Decimal("9")),),
    ...     total=Decimal("9"), currency="EUR")
    >>> conversions(profile, order, timedelta(days=3), "exp", 0.0)
    (Conversion(trigger_type='cart_abandonment', arm=<Arm.treatment: 'treatment'>),)

    """
    if before is None:
        return ()
    arm = Arm.holdout if in_holdout(order.customer_id, salt, holdout_share) else Arm.treatment
    return tuple(
        Conversion(trigger_type, arm)
        for trigger_type, at in sorted(before.last_trigger_at.items())
        if at <= order.occurred_at < at + window
    )
