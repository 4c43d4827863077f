"""One pure step per event and per due deadline: everything the shell stores and sends.

The shell keeps three things per customer (the profile, the pending
deadlines, the feature snapshots waiting for a label) and hands them here
with the event, the partition's event clock and the current models. The
step returns the new state of all three and every message to publish:
profile changes, labelled training examples, trigger decisions and the
triggers themselves. Nothing here reads a clock or talks to Kafka, so the
same inputs always give the same outputs (:mod:`streams.core.triggers.timeline`
is the in-memory reference this follows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import Field

from online_models.features import features
from online_models.labels import ENGAGEMENT, PURCHASE, Pending, erased, maybe_snapshot, resolve
from online_models.propensity import ENGAGEMENT_MODEL, PURCHASE_MODEL, ModelConfig
from schemas.cart import OrderCompleted
from schemas.codec import InboundEvent
from streams.core.attribution import Conversion, conversions
from streams.core.frozen import FrozenModel
from streams.core.policy import PolicyConfig, apply_decision, decide, reoffer
from streams.core.profile import Profile, Tombstone, record_score
from streams.core.reducer import ProfileConfig, apply
from streams.core.triggers.base import Deadline, RuleResult, Score, ScoreLike, TriggerConfig
from streams.core.triggers.rules import evaluate_deadline, evaluate_event

__all__ = [
    "Deadlines",
    "Destination",
    "EngineConfig",
    "Models",
    "Outbound",
    "Result",
    "on_deadline",
    "on_event",
]

SCORED_EVENTS: Final = frozenset(
    {"page_view", "product_view", "category_view", "search", "cart_add", "checkout_started"}
)
"""Events that score purchase intent: the customer is on the site, deciding."""

Scorer = Callable[[Mapping[str, float]], ScoreLike]
"""A model's scoring function (the shell holds the current snapshot)."""


@dataclass(frozen=True, slots=True)
class Models:
    """The scorers of the purchase and engagement models, as the worker has them now."""

    purchase: Scorer
    engagement: Scorer


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything a step is configured by."""

    profile: ProfileConfig = field(default_factory=ProfileConfig)
    triggers: TriggerConfig = field(default_factory=TriggerConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    purchase_model: ModelConfig = PURCHASE_MODEL
    engagement_model: ModelConfig = ENGAGEMENT_MODEL
    salt: str = "nudge"
    max_pending: int = 64
    attribution_window: timedelta = timedelta(days=3)


def _due_order(deadline: Deadline) -> tuple[datetime, str, str]:
    return (deadline.due_at, deadline.rule.value, deadline.key)


class Deadlines(FrozenModel):
    """A customer's pending deadlines, at most one per rule and key."""

    customer_id: str
    items: tuple[Deadline, ...] = Field(default=())

    def update(self, result: RuleResult) -> Deadlines:
        """Apply a rule result's cancellations, then its new deadlines (replacing same keys)."""
        cancelled = set(result.deadlines_cancelled)  # once, not once per deadline
        kept = {ref: d for d in self.items if (ref := d.ref) not in cancelled}
        for deadline in result.deadlines_set:
            kept[deadline.ref] = deadline
        items = tuple(sorted(kept.values(), key=_due_order))
        return self if items == self.items else Deadlines(customer_id=self.customer_id, items=items)

    def keeping(self, earlier: Deadlines | None) -> Deadlines:
        """Add back the deadlines of ``earlier`` these dropped (fired or cancelled since).

        What a commit writes first (see :mod:`streams.commits`): everything a
        step added or moved, nothing it removed, so a crash before the
        profile is written never loses a deadline whose firing the profile
        does not remember yet. A deadline kept that way and fired again
        finds its decision recorded (or its cart closed) and offers nothing.
        """
        if earlier is None:
            return self
        refs = {d.ref for d in self.items}
        dropped = tuple(d for d in earlier.items if d.ref not in refs)
        if not dropped:
            return self
        items = tuple(sorted((*self.items, *dropped), key=_due_order))
        return Deadlines(customer_id=self.customer_id, items=items)

    def without(self, deadline: Deadline) -> Deadlines:
        """Drop ``deadline`` (it is being fired)."""
        items = tuple(d for d in self.items if d.ref != deadline.ref)
        return Deadlines(customer_id=self.customer_id, items=items)

    def next_due(self) -> datetime | None:
        """Return the earliest due time, for the shell's index."""
        return self.items[0].due_at if self.items else None


class Destination(StrEnum):
    """Which outbound topic a message goes to."""

    profiles = "profiles"
    training = "training"
    decisions = "decisions"
    triggers = "triggers"
    holdout = "holdout"


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to publish, keyed by the customer id."""

    destination: Destination
    value: bytes


@dataclass(frozen=True, slots=True)
class Result:
    """The customer's state after a step, and what to send."""

    profile: Profile | Tombstone | None
    deadlines: Deadlines
    pending: Pending | None
    messages: tuple[Outbound, ...] = ()
    applied: bool = True
    skipped: str | None = None
    decisions: tuple[tuple[str, str], ...] = ()
    """(trigger type, outcome) of each decision taken, for metrics."""
    conversions: tuple[Conversion, ...] = ()
    """Triggers this event (an order) is credited to, for the lift metrics."""


def on_event(
    profile: Profile | Tombstone | None,
    deadlines: Deadlines | None,
    pending: Pending | None,
    event: InboundEvent,
    now: datetime,
    models: Models,
    config: EngineConfig,
) -> Result:
    """Apply one valid event: profile, scores, labels, rules and policy.

    ``now`` is the partition's event clock (its watermark); the event itself
    may be late, behind it.
    """
    deadlines = deadlines or Deadlines(customer_id=event.customer_id)
    step = apply(profile, event, config.profile)
    messages = [Outbound(Destination.profiles, output.to_bytes()) for output in step.outputs]
    state = step.profile
    if isinstance(state, Tombstone):
        # Erasure drops everything kept for the customer, not only the profile.
        # An event about someone already erased is skipped: say why ("erased").
        empty = Deadlines(customer_id=event.customer_id)
        pending = erased(event.customer_id)
        return Result(state, empty, pending, tuple(messages), step.applied, step.reason)
    if not step.applied:
        return Result(state, deadlines, pending, (), applied=False, skipped=step.reason)

    score: ScoreLike | None = None
    label_clock = max(now, event.occurred_at)
    if event.type in SCORED_EVENTS:
        x = features(state, event, event.occurred_at, config.profile)
        score = models.purchase(x)
        state = record_score(
            state, PURCHASE, score.probability, score.model_version, event.occurred_at
        )
        pending = _snapshot(
            pending, event.customer_id, config.purchase_model, x, event.occurred_at, config
        )
    elif event.type == "email_sent":
        x = features(state, event, event.occurred_at, config.profile)
        engagement = models.engagement(x)
        state = record_score(
            state, ENGAGEMENT, engagement.probability, engagement.model_version, event.occurred_at
        )
        pending = _snapshot(
            pending, event.customer_id, config.engagement_model, x, event.occurred_at, config
        )
    pending, labelled = resolve(pending, event, label_clock)
    messages += [Outbound(Destination.training, example.to_bytes()) for example in labelled]

    rules = evaluate_event(state, event, score, now, config.triggers)
    result = _decide_all(state, deadlines.update(rules), pending, rules, now, config, messages)
    if isinstance(event, OrderCompleted) and isinstance(profile, Profile):
        window, salt, share = config.attribution_window, config.salt, config.policy.holdout_share
        credited = conversions(profile, event, window, salt, share)
        result = dataclasses.replace(result, conversions=credited)
    return result


def on_deadline(
    profile: Profile | Tombstone | None,
    deadlines: Deadlines,
    pending: Pending | None,
    deadline: Deadline,
    now: datetime,
    config: EngineConfig,
) -> Result:
    """Fire a due deadline: the rule that set it decides whether a trigger goes."""
    deadlines = deadlines.without(deadline)
    if not isinstance(profile, Profile):
        return Result(profile, deadlines, pending)
    stored = profile.scores.get(PURCHASE)
    score = None if stored is None else Score(stored.probability, stored.model_version)
    rules = evaluate_deadline(profile, deadline, score, deadline.due_at, config.triggers)
    return _decide_all(profile, deadlines.update(rules), pending, rules, now, config, [])


def expire_labels(
    pending: Pending | None, now: datetime
) -> tuple[Pending | None, tuple[Outbound, ...]]:
    """Label negative every snapshot whose horizon ``now`` has passed."""
    pending, labelled = resolve(pending, None, now)
    return pending, tuple(Outbound(Destination.training, e.to_bytes()) for e in labelled)


def _snapshot(
    pending: Pending | None,
    customer_id: str,
    model: ModelConfig,
    x: Mapping[str, float],
    at: datetime,
    config: EngineConfig,
) -> Pending:
    return maybe_snapshot(
        pending,
        customer_id,
        model.name,
        x,
        at,
        model.min_interval,
        model.horizon,
        config.max_pending,
    )


def _decide_all(
    profile: Profile,
    deadlines: Deadlines,
    pending: Pending | None,
    rules: RuleResult,
    now: datetime,
    config: EngineConfig,
    messages: list[Outbound],
) -> Result:
    outcomes: list[tuple[str, str]] = []
    state: Profile | Tombstone = profile
    for candidate in rules.candidates:
        decision = decide(state, candidate, now, config.policy, config.salt)
        state = apply_decision(state, decision)
        outcomes.append((candidate.trigger_type.value, decision.outcome.value))
        messages.append(Outbound(Destination.decisions, decision.message().to_bytes()))
        if decision.trigger is not None and decision.destination is not None:
            where = Destination(
                "triggers" if decision.destination == "outbound" else decision.destination
            )
            messages.append(Outbound(where, decision.trigger.to_bytes()))
        retry = reoffer(decision)
        if retry is not None:
            deadlines = deadlines.update(RuleResult(deadlines_set=(retry,)))
    return Result(state, deadlines, pending, tuple(messages), decisions=tuple(outcomes))
