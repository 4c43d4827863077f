"""The rule registry, and the two calls the shell makes: on an event, and on a deadline.

Adding a rule is one module with ``on_event`` and ``on_deadline`` and one
line in :data:`RULES`. Results are concatenated in registry order, so the
same profile and event always give the same result, in the same order.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from streams.core.profile import Profile, Tombstone
from streams.core.triggers import browse_abandonment, cart_abandonment, high_intent
from streams.core.triggers.base import (
    EMPTY,
    Deadline,
    Rule,
    RuleResult,
    ScoreLike,
    TriggerConfig,
)

if TYPE_CHECKING:
    from schemas.codec import InboundEvent

__all__ = ["RULES", "evaluate_deadline", "evaluate_event"]

RULES: Final[tuple[Rule, ...]] = (
    Rule(
        browse_abandonment.TRIGGER_TYPE,
        browse_abandonment.on_event,
        browse_abandonment.on_deadline,
    ),
    Rule(cart_abandonment.TRIGGER_TYPE, cart_abandonment.on_event, cart_abandonment.on_deadline),
    Rule(high_intent.TRIGGER_TYPE, high_intent.on_event, high_intent.on_deadline),
)
"""Every rule, in the order their results are returned."""


def _aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")


def evaluate_event(
    state: Profile | Tombstone,
    event: InboundEvent,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
    rules: tuple[Rule, ...] = RULES,
) -> RuleResult:
    """Run every rule on an event the reducer has just applied.

    Parameters
    ----------
    state
        The customer's state *after* :func:`streams.core.reducer.apply`
        (call only when ``step.applied``). A tombstone gives nothing: the
        shell drops an erased customer's deadlines.
    event
        The event just applied.
    score
        The customer's latest purchase-propensity score, or None.
    now
        The shell's event clock (the partition watermark), aware.
    config
        Thresholds and windows.
    rules
        The registry (tests pass a subset).

    Returns
    -------
    RuleResult
        Candidates for :func:`streams.core.policy.decide`, and deadlines to
        set (replacing any with the same key) and to cancel.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.clickstream import ProductView
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> ten = datetime(2024, 5, 1, 10, tzinfo=UTC)
    >>> view = ProductView(
    ...     event_id="e1", customer_id="c1", occurred_at=ten, session_id="s1",
    ...     product_id="sku-1", price=Decimal("20"), currency="EUR",
    ... )
    >>> profile = apply(None, view, ProfileConfig()).profile
    >>> result = evaluate_event(profile, view, None, ten, TriggerConfig())
    >>> [str(d.due_at) for d in result.deadlines_set]
    ['2024-05-01 11:00:00+00:00']

    """
    _aware(now)
    if isinstance(state, Tombstone):
        return EMPTY
    if state.customer_id != event.customer_id:
        raise ValueError(
            f"event of {event.customer_id!r} with the profile of {state.customer_id!r}"
        )
    result = EMPTY
    for rule in rules:
        found = rule.on_event(state, event, score, now, config)
        if found is not EMPTY:  # most events concern no rule: skip the concatenation
            result = found if result is EMPTY else result + found
    return result


def evaluate_deadline(
    state: Profile | Tombstone,
    deadline: Deadline,
    score: ScoreLike | None,
    now: datetime,
    config: TriggerConfig,
    rules: tuple[Rule, ...] = RULES,
) -> RuleResult:
    """Run the rule that set ``deadline``, once the shell's clock ``now`` has reached it.

    A deadline called early comes back in ``deadlines_set`` (still pending).
    A tombstone, or a deadline of a rule no longer registered, gives nothing.
    """
    _aware(now)
    if isinstance(state, Tombstone):
        return EMPTY
    if state.customer_id != deadline.customer_id:
        raise ValueError(
            f"deadline of {deadline.customer_id!r} with the profile of {state.customer_id!r}"
        )
    for rule in rules:
        if rule.trigger_type is deadline.rule:
            return rule.on_deadline(state, deadline, score, now, config)
    return EMPTY
