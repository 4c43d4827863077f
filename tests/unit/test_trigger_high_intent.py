"""High-intent discount, scenario by scenario: scored events in, discount offers out.

Each row: the story, the events with the score the model gave at each
(times on 1 May 2024 UTC unless a day is given), the trigger history, and
the expected offers as (time, session key, tier).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import pytest

from schemas.triggers import HighIntentPayload
from streams.core.policy import PolicyConfig
from streams.core.triggers import high_intent
from streams.core.triggers.base import Deadline, Score, TriggerConfig
from tests.unit.test_trigger_timeline import (
    CUSTOMER,
    HIGH,
    OPEN,
    Timed,
    add,
    at,
    consent,
    delivered,
    history,
    of_type,
    order,
    page,
    profile_of,
    run,
    scored,
    view,
)

pytestmark = pytest.mark.unit


class Case(NamedTuple):
    story: str
    events: list[Timed]
    expected: list[tuple[datetime, str, str]]
    history: dict[str, datetime] | None = None
    config: TriggerConfig = TriggerConfig()


CASES = [
    Case(
        "scores 0.85 on a page view at 10:00 -> one discount offer, vip",
        [scored(page("10:00"), 0.85)],
        [(at("10:00"), "s1", "vip")],
    ),
    Case(
        "scores exactly 0.8 -> offer (at or above), tier discount (0.8 is not above 0.8)",
        [scored(page("10:00"), 0.8)],
        [(at("10:00"), "s1", "discount")],
    ),
    Case("scores 0.79 -> nothing", [scored(page("10:00"), 0.79)], []),
    Case("no score yet -> nothing", [page("10:00")], []),
    Case(
        "scores high twice in one session -> one offer (cooldown starts)",
        [scored(page("10:00"), 0.9), scored(view("10:05"), 0.95)],
        [(at("10:00"), "s1", "vip")],
    ),
    Case(
        "rises above the threshold at the third event -> offer then",
        [scored(page("10:00"), 0.3), scored(view("10:05"), 0.6), scored(add("10:10"), 0.82)],
        [(at("10:10"), "s1", "vip")],
    ),
    Case(
        "ordered earlier in this session -> nothing",
        [page("10:00"), order("10:05"), scored(page("10:10"), 0.9)],
        [],
    ),
    Case(
        "ordered yesterday, in another session -> offer",
        [order("10:00", day=-1), scored(page("10:00"), 0.9)],
        [(at("10:00"), "s1", "vip")],
    ),
    Case(
        "offered 3 days ago -> nothing (7-day cooldown)",
        [scored(page("10:00"), 0.9)],
        [],
        {"high_intent": at("10:00", day=-3)},
    ),
    Case(
        "offered exactly 7 days ago -> offer",
        [scored(page("10:00"), 0.9)],
        [(at("10:00"), "s1", "vip")],
        {"high_intent": at("10:00", day=-7)},
    ),
    Case(
        "a new session 8 days after the first offer -> a second offer",
        [scored(page("10:00"), 0.9), scored(page("10:00", day=8, session="s9"), 0.9)],
        [(at("10:00"), "s1", "vip"), (at("10:00", day=8), "s9", "vip")],
    ),
    Case(
        "scores high on an email event (not browsing) -> nothing",
        [page("09:00"), scored(delivered("10:00", day=0), 0.9)],
        [],
    ),
    Case(
        "a late event of an earlier session scores high -> nothing",
        [page("10:00", session="s2"), scored(page("09:00", session="s1"), 0.9)],
        [],
    ),
    Case(
        "a lower threshold of 0.6 -> offer at 0.65, tier discount",
        [scored(page("10:00"), 0.65)],
        [(at("10:00"), "s1", "discount")],
        config=TriggerConfig(high_intent_threshold=0.6),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.story for case in CASES])
def test_high_intent_scenarios(case: Case) -> None:
    states = history(**case.history) if case.history else None
    timeline = run(case.events, config=case.config, states=states)
    got = [
        (f.candidate.occurred_at, f.candidate.key, f.candidate.tier.value)
        for f in of_type(timeline, HIGH)
    ]
    assert got == case.expected


# One decision per session, through the policy: a customer who qualifies on
# every page gets one decision for the session's trigger id, whatever it is.
# Rows: (time, session, outcome) of every high-intent decision.
class DecisionCase(NamedTuple):
    story: str
    events: list[Timed]
    expected: list[tuple[datetime, str, str]]
    policy: PolicyConfig = OPEN


DECISIONS = [
    DecisionCase(
        "no consent, qualifies on three events -> one suppressed decision, not three",
        [scored(page("10:00"), 0.9), scored(view("10:05"), 0.95), scored(add("10:10"), 0.9)],
        [(at("10:00"), "s1", "suppressed")],
    ),
    DecisionCase(
        "no consent, qualifies again in a new session the next day -> one decision each",
        [
            scored(page("10:00"), 0.9),
            scored(page("10:05"), 0.9),
            scored(page("10:00", day=1, session="s2"), 0.9),
            scored(page("10:05", day=1, session="s2"), 0.9),
        ],
        [(at("10:00"), "s1", "suppressed"), (at("10:00", day=1), "s2", "suppressed")],
    ),
    DecisionCase(
        "no consent, two devices taking turns (s1, s2, s1, s2) -> one decision per session",
        [
            scored(page("10:00"), 0.9),
            scored(page("10:01", session="s2"), 0.9),
            scored(page("10:02"), 0.9),
            scored(page("10:03", session="s2"), 0.9),
        ],
        [(at("10:00"), "s1", "suppressed"), (at("10:01"), "s2", "suppressed")],
    ),
    DecisionCase(
        "capped by a browse email at 09:00 -> one capped decision, never offered again",
        [
            consent(),
            view("08:00", session="s0"),
            scored(page("10:00"), 0.9),
            scored(page("10:05"), 0.9),
        ],
        [(at("10:00"), "s1", "capped")],
    ),
    DecisionCase(
        "consented -> sent once",
        [consent(), scored(page("10:00"), 0.9), scored(page("10:05"), 0.9)],
        [(at("10:00"), "s1", "sent")],
    ),
    DecisionCase(
        "held out -> one holdout decision",
        [consent(), scored(page("10:00"), 0.9), scored(page("10:05"), 0.9)],
        [(at("10:00"), "s1", "holdout")],
        PolicyConfig(holdout_share=1.0),
    ),
]


@pytest.mark.parametrize("case", DECISIONS, ids=[case.story for case in DECISIONS])
def test_one_decision_per_session(case: DecisionCase) -> None:
    timeline = run(case.events, policy=case.policy)
    got = [
        (f.candidate.occurred_at, f.candidate.key, f.decision.outcome.value)
        for f in of_type(timeline, HIGH)
        if f.decision is not None
    ]
    assert got == case.expected


REASONS = [
    (0.86, TriggerConfig(), "Purchase propensity 0.86 ≥ 0.80 in a session without an order"),
    (0.8, TriggerConfig(), "Purchase propensity 0.80 ≥ 0.80 in a session without an order"),
    (
        0.6549,
        TriggerConfig(high_intent_threshold=0.65),
        "Purchase propensity 0.65 ≥ 0.65 in a session without an order",
    ),
]


@pytest.mark.parametrize(("probability", "config", "expected"), REASONS)
def test_the_reason_gives_the_score_and_the_threshold(
    probability: float, config: TriggerConfig, expected: str
) -> None:
    (fired,) = of_type(run([scored(page("10:00"), probability)], config=config), HIGH)
    assert fired.candidate.reason == expected


def test_the_offer_carries_the_discount_its_expiry_and_the_session_products() -> None:
    events: list[Timed] = [
        view("10:00", "sku-1"),
        view("10:02", "sku-2"),
        scored(page("10:05"), 0.9),
    ]
    config = TriggerConfig(
        high_intent_discount_percent=15, high_intent_offer_validity=timedelta(hours=24)
    )
    (fired,) = of_type(run(events, config=config), HIGH)
    payload = fired.candidate.payload
    assert isinstance(payload, HighIntentPayload)
    assert (payload.offer.discount_percent, payload.offer.expires_at) == (15, at("10:05", day=1))
    assert [p.product_id for p in payload.products] == ["sku-2", "sku-1"]
    assert fired.candidate.reoffer is False
    assert fired.candidate.score == Score(0.9, "m1")


def test_any_score_like_value_is_accepted() -> None:
    class ModelScore(NamedTuple):  # what the model package might hand over
        probability: float
        model_version: str

    event = page("10:00")
    result = high_intent.on_event(
        profile_of(event), event, ModelScore(0.9, "purchase-v3"), at("10:00"), TriggerConfig()
    )
    (candidate,) = result.candidates
    assert candidate.score == Score(0.9, "purchase-v3")


def test_the_rule_sets_no_deadlines_and_answers_none() -> None:
    profile = profile_of(page("10:00"))
    deadline = Deadline(customer_id=CUSTOMER, rule=HIGH, key="s1", due_at=at("10:00"))
    result = high_intent.on_deadline(profile, deadline, None, at("11:00"), TriggerConfig())
    assert result == high_intent.on_deadline(profile, deadline, None, at("12:00"), TriggerConfig())
    assert (result.candidates, result.deadlines_set) == ((), ())
