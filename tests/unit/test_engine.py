"""One engine step per event or deadline: state, scores, labels, triggers, all together."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pytest

from online_models.propensity import Score
from schemas.codec import InboundEvent
from streams.core.engine import (
    Deadlines,
    Destination,
    EngineConfig,
    Models,
    Result,
    on_deadline,
    on_event,
)
from streams.core.policy import PolicyConfig
from streams.core.profile import Profile, Tombstone
from tests.unit.test_trigger_timeline import at, consent, erased, order, page, view

pytestmark = pytest.mark.unit

CONFIG = EngineConfig(policy=PolicyConfig(holdout_share=0))


def constant(probability: float) -> Models:
    def score(x: Mapping[str, float]) -> Score:
        return Score(probability, "test-v1")

    return Models(purchase=score, engagement=score)


def run(*events: InboundEvent) -> Result:
    state = Result(None, Deadlines(customer_id="cus-1"), None)
    for event in events:
        now = event.occurred_at
        state = on_event(
            state.profile, state.deadlines, state.pending, event, now, constant(0.5), CONFIG
        )
    return state


def sent_to(result: Result, destination: Destination) -> list[dict[str, object]]:
    return [orjson.loads(m.value) for m in result.messages if m.destination is destination]


def test_a_product_view_scores_snapshots_and_sets_a_deadline_that_fires_a_trigger() -> None:
    viewed = run(consent(), view("10:00", "sku-9"))
    profile = viewed.profile
    assert isinstance(profile, Profile)
    assert profile.scores["purchase"].probability == 0.5
    assert profile.scores["purchase"].model_version == "test-v1"
    assert viewed.pending is not None
    assert len(viewed.pending.examples) == 1
    (deadline,) = viewed.deadlines.items
    assert deadline.due_at == at("11:00")

    fired = on_deadline(profile, viewed.deadlines, viewed.pending, deadline, at("11:00"), CONFIG)
    assert fired.deadlines.items == ()
    assert fired.decisions == (("browse_abandonment", "sent"),)
    (trigger,) = sent_to(fired, Destination.triggers)
    assert trigger["trigger_type"] == "browse_abandonment"
    assert trigger["tier"] == "discount"
    (decision,) = sent_to(fired, Destination.decisions)
    assert decision["outcome"] == "sent"
    assert decision["trigger_id"] == trigger["trigger_id"]


def test_without_consent_a_session_gets_one_suppressed_decision_not_one_per_event() -> None:
    state = Result(None, Deadlines(customer_id="cus-1"), None)
    decided: list[tuple[str, str]] = []
    for event in (page("10:00"), view("10:05"), page("10:10")):
        state = on_event(
            state.profile,
            state.deadlines,
            state.pending,
            event,
            event.occurred_at,
            constant(0.9),
            CONFIG,
        )
        decided += state.decisions
    assert decided == [("high_intent", "suppressed")]
    assert isinstance(state.profile, Profile)
    assert state.profile.decided_keys == {"high_intent": ("s1",)}


def test_the_trigger_and_its_decision_say_why_it_fired() -> None:
    viewed = run(consent(), view("10:00", "sku-9"))
    (deadline,) = viewed.deadlines.items
    fired = on_deadline(
        viewed.profile, viewed.deadlines, viewed.pending, deadline, at("11:00"), CONFIG
    )
    (trigger,) = sent_to(fired, Destination.triggers)
    (decision,) = sent_to(fired, Destination.decisions)
    why = "Viewed 1 product (latest: sku-9, 20.00 EUR) and left 60 min ago without adding to cart"
    assert trigger["reason"] == decision["trigger_reason"] == why


def test_an_order_within_the_horizon_labels_the_snapshot_positive() -> None:
    result = run(consent(), view("10:00"), order("12:00"))
    (example,) = sent_to(result, Destination.training)
    assert example["model"] == "purchase"
    assert example["label"] is True
    assert result.pending is not None
    assert result.pending.examples == ()


def test_erasure_drops_deadlines_and_pending_examples() -> None:
    result = run(consent(), view("10:00"), erased("10:05"))
    assert isinstance(result.profile, Tombstone)
    assert result.deadlines.items == ()
    assert result.pending is not None
    assert result.pending.examples == ()
    assert [m["type"] for m in sent_to(result, Destination.profiles)] == ["profile_erased"]


def test_a_duplicate_event_changes_nothing_and_sends_nothing() -> None:
    first = view("10:00")
    once = run(consent(), first)
    twice = on_event(
        once.profile, once.deadlines, once.pending, first, at("10:01"), constant(0.5), CONFIG
    )
    assert not twice.applied
    assert twice.skipped == "duplicate_event"
    assert twice.messages == ()
    assert twice.profile is once.profile


def test_a_deadline_for_an_erased_customer_sends_nothing() -> None:
    viewed = run(consent(), view("10:00"))
    (deadline,) = viewed.deadlines.items
    gone = Tombstone(customer_id="cus-1", erased_at=at("10:30"))
    fired = on_deadline(gone, viewed.deadlines, None, deadline, at("11:00"), CONFIG)
    assert fired.messages == ()
    assert fired.deadlines.items == ()


def test_deadlines_keep_one_per_rule_and_key_in_due_order() -> None:
    result = run(consent(), view("10:00"), view("10:20"))
    assert [d.due_at for d in result.deadlines.items] == [at("11:20")]
    assert result.deadlines.next_due() == at("11:20")


def test_an_order_within_three_days_of_a_trigger_is_credited_to_it_once() -> None:
    viewed = run(consent(), view("10:00", "sku-9"))
    (deadline,) = viewed.deadlines.items
    fired = on_deadline(
        viewed.profile, viewed.deadlines, viewed.pending, deadline, at("11:00"), CONFIG
    )
    bought = on_event(
        fired.profile,
        fired.deadlines,
        fired.pending,
        order("09:00", day=2),
        at("09:00", 2),
        constant(0.5),
        CONFIG,
    )
    assert [(c.trigger_type, c.arm.value) for c in bought.conversions] == [
        ("browse_abandonment", "treatment")
    ]
    too_late = on_event(
        fired.profile,
        fired.deadlines,
        fired.pending,
        order("12:00", day=3),
        at("12:00", 3),
        constant(0.5),
        CONFIG,
    )
    assert too_late.conversions == ()
