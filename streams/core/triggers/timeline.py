"""The whole loop in memory: events in event time through reducer, rules, deadlines and policy.

:func:`replay` is the reference for what the shell does with one partition,
minus Kafka: for each event, move the watermark and fire the deadlines it
passed (earliest first), apply the event, run the rules, keep the deadlines
they set and cancelled, decide every candidate and record the decision in
the profile; at the end, fire what is due by ``until``. A deadline fires
(with ``now`` at its due time) before an event at the same instant: the
deadline wins the tie. An erasure drops the customer's pending deadlines.

Scenario tests read as tables through it, and because it is pure, the same
input always gives the same :class:`Timeline`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from streams.core.clock import Watermark
from streams.core.policy import Decision, PolicyConfig, apply_decision, decide, reoffer
from streams.core.profile import Profile, Tombstone, record_decided, record_trigger
from streams.core.reducer import ProfileConfig, apply
from streams.core.triggers.base import (
    Candidate,
    Deadline,
    DeadlineKey,
    RuleResult,
    ScoreLike,
    TriggerConfig,
)
from streams.core.triggers.rules import evaluate_deadline, evaluate_event

if TYPE_CHECKING:
    from schemas.codec import InboundEvent

__all__ = ["Fired", "Timeline", "replay"]


@dataclass(frozen=True, slots=True)
class Fired:
    """A candidate, when the clock stood when it came, and the policy's decision.

    ``decision`` is None when :func:`replay` ran without a policy (every
    candidate then counts as sent, for the rules' own cooldowns and their
    one decision per key).
    """

    candidate: Candidate
    now: datetime
    decision: Decision | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """The outcome of a replay: final states, every candidate in order, deadlines left."""

    states: Mapping[str, Profile | Tombstone]
    fired: tuple[Fired, ...]
    pending: tuple[Deadline, ...]


def _order(deadline: Deadline) -> tuple[datetime, str, str, str]:
    return (deadline.due_at, deadline.customer_id, deadline.rule.value, deadline.key)


def replay(
    events: Iterable[tuple[InboundEvent, ScoreLike | None]],
    *,
    until: datetime | None = None,
    lateness: timedelta = timedelta(0),
    states: Mapping[str, Profile | Tombstone] | None = None,
    profile_config: ProfileConfig | None = None,
    trigger_config: TriggerConfig | None = None,
    policy: PolicyConfig | None = None,
    salt: str = "",
) -> Timeline:
    """Run scored events (in arrival order) through the whole core.

    ``states`` are the customers' states before the first event. With
    ``policy`` None, candidates are not decided, only recorded as sent (and
    decided for good).
    """
    profile_config = profile_config or ProfileConfig()
    trigger_config = trigger_config or TriggerConfig()
    current: dict[str, Profile | Tombstone] = dict(states or {})
    scores: dict[str, ScoreLike | None] = {}
    pending: dict[DeadlineKey, Deadline] = {}
    fired: list[Fired] = []
    mark = Watermark(lateness=lateness)

    def handle(customer_id: str, result: RuleResult, now: datetime) -> None:
        for key in result.deadlines_cancelled:
            pending.pop(key, None)
        for deadline in result.deadlines_set:
            pending[deadline.ref] = deadline
        state = current[customer_id]
        for candidate in result.candidates:
            decision = None
            if policy is None:
                if isinstance(state, Profile):
                    kind, at = candidate.trigger_type.value, candidate.offered_at
                    state = record_decided(record_trigger(state, kind, at), kind, candidate.key)
            else:
                decision = decide(state, candidate, now, policy, salt)
                state = apply_decision(state, decision)
                retry = reoffer(decision)
                if retry is not None:
                    pending[retry.ref] = retry
            fired.append(Fired(candidate, now, decision))
        current[customer_id] = state

    def fire(clock: datetime | None) -> None:
        # Each deadline fires at its due time, as a live clock ticking past it would.
        while clock is not None:
            due = [deadline for deadline in pending.values() if deadline.due_at <= clock]
            if not due:
                return
            deadline = min(due, key=_order)
            del pending[deadline.ref]
            state = current.get(deadline.customer_id)
            if state is None:
                continue
            customer_id = deadline.customer_id
            score = scores.get(customer_id)
            now = deadline.due_at
            result = evaluate_deadline(state, deadline, score, now, trigger_config)
            handle(customer_id, result, now)

    for event, score in events:
        mark = mark.observe(event.occurred_at)
        now = mark.now() or event.occurred_at - lateness
        fire(now)
        customer_id = event.customer_id
        step = apply(current.get(customer_id), event, profile_config)
        current[customer_id] = step.profile
        if isinstance(step.profile, Tombstone):
            for key in [key for key in pending if key.customer_id == customer_id]:
                del pending[key]
            continue
        if not step.applied:
            continue
        scores[customer_id] = score
        handle(customer_id, evaluate_event(step.profile, event, score, now, trigger_config), now)
    fire(until)
    left = tuple(sorted(pending.values(), key=_order))
    return Timeline(states=current, fired=tuple(fired), pending=left)
