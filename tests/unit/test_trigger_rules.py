"""The registry, journey tiers, settings and the outbound trigger contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.triggers import (
    MAX_REASON_CHARS,
    Arm,
    BrowsePayload,
    CartItem,
    CartPayload,
    DecisionMessage,
    DecisionReason,
    HighIntentPayload,
    Offer,
    Outcome,
    Tier,
    TriggerMessage,
    TriggerType,
    ViewedProduct,
    trigger_id,
)
from streams.core.profile import Profile, Tombstone
from streams.core.reducer import ProfileConfig, apply
from streams.core.rfm import Segment
from streams.core.triggers import RULES, evaluate_deadline, evaluate_event, tier
from streams.core.triggers.base import MAX_REASON_ID_CHARS, Deadline, Score, TriggerConfig
from tests.unit.test_trigger_timeline import (
    BROWSE,
    CUSTOMER,
    Timed,
    add,
    at,
    page,
    run,
    scored,
    view,
)

pytestmark = pytest.mark.unit


def _profile(*events: Any) -> Profile:
    state: Profile | Tombstone | None = None
    for event in events:
        state = apply(state, event, ProfileConfig()).profile
    assert isinstance(state, Profile)
    return state


# --- registry ----------------------------------------------------------------


def test_one_rule_per_trigger_type_in_a_fixed_order() -> None:
    assert [rule.trigger_type for rule in RULES] == list(TriggerType)


def test_evaluate_event_runs_every_rule() -> None:
    event = add("10:00")
    profile = _profile(view("09:55"), event)
    result = evaluate_event(profile, event, Score(0.9, "m1"), at("10:00"), TriggerConfig())
    assert [c.trigger_type for c in result.candidates] == [TriggerType.high_intent]
    assert [d.rule for d in result.deadlines_set] == [TriggerType.cart_abandonment]
    assert [k.rule for k in result.deadlines_cancelled] == [BROWSE]  # carted: browse is off


def test_evaluate_deadline_runs_only_the_rule_that_set_it() -> None:
    profile = _profile(view("10:00"))
    deadline = Deadline(customer_id=CUSTOMER, rule=BROWSE, key="s1", due_at=at("11:00"))
    result = evaluate_deadline(profile, deadline, None, at("11:00"), TriggerConfig())
    assert [c.trigger_type for c in result.candidates] == [BROWSE]
    assert evaluate_deadline(profile, deadline, None, at("11:00"), TriggerConfig(), ()) == (
        evaluate_deadline(profile, deadline, None, at("11:00"), TriggerConfig(), RULES[1:])
    )


def test_a_tombstone_gives_nothing() -> None:
    tombstone = Tombstone(customer_id=CUSTOMER, erased_at=at("10:00"))
    deadline = Deadline(customer_id=CUSTOMER, rule=BROWSE, key="s1", due_at=at("11:00"))
    assert (
        evaluate_deadline(tombstone, deadline, None, at("11:00"), TriggerConfig()).candidates == ()
    )
    event = page("10:00")
    assert evaluate_event(tombstone, event, None, at("11:00"), TriggerConfig()).candidates == ()


def test_evaluate_refuses_a_naive_clock_and_another_customer() -> None:
    event = page("10:00")
    profile = _profile(event)
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_event(profile, event, None, datetime(2024, 5, 1), TriggerConfig())  # noqa: DTZ001
    other = page("10:00", customer="cus-2")
    with pytest.raises(ValueError, match="profile of"):
        evaluate_event(profile, other, None, at("10:00"), TriggerConfig())


def test_rules_are_deterministic() -> None:
    event = view("10:00")
    profile = _profile(event)
    runs = {
        repr(evaluate_event(profile, event, Score(0.9, "m1"), at("10:00"), TriggerConfig()))
        for _ in range(3)
    }
    assert len(runs) == 1


# --- tiers -------------------------------------------------------------------

TIERS = [
    (None, "educational"),
    (0.0, "educational"),
    (0.3999, "educational"),
    (0.4, "discount"),
    (0.6, "discount"),
    (0.8, "discount"),
    (0.8001, "vip"),
    (1.0, "vip"),
]


@pytest.mark.parametrize(("probability", "expected"), TIERS)
def test_tier_boundaries(probability: float | None, expected: str) -> None:
    score = None if probability is None else Score(probability, "m1")
    assert tier(score, TriggerConfig()).value == expected


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(p=unit, q=unit, lo=unit, hi=unit)
def test_tiers_follow_the_boundaries_and_never_fall_as_the_score_rises(
    p: float, q: float, lo: float, hi: float
) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    config = TriggerConfig(tier_discount_from=lo, tier_vip_above=hi)
    got = tier(Score(p, "m1"), config)
    expected = Tier.vip if p > hi else Tier.discount if p >= lo else Tier.educational
    assert got is expected
    rank = [Tier.educational, Tier.discount, Tier.vip]
    low, high = sorted((p, q))
    assert rank.index(tier(Score(low, "m"), config)) <= rank.index(tier(Score(high, "m"), config))


# --- settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"browse_wait": timedelta(0)},
        {"cart_cooldown": timedelta(minutes=-1)},
        {"browse_max_products": 0},
        {"cart_max_lines": 101},
        {"browse_min_price": Decimal(-1)},
        {"high_intent_threshold": 1.5},
        {"high_intent_discount_percent": 0},
        {"tier_discount_from": 0.9, "tier_vip_above": 0.8},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        TriggerConfig(**bad)


@pytest.mark.parametrize("probability", [-0.1, 1.1, float("nan")])
def test_a_score_outside_zero_one_is_refused(probability: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Score(probability, "m1")


# --- reasons -----------------------------------------------------------------

_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=128)
_prices = st.decimals(min_value=0, max_value=Decimal("99999999999999.9999"), places=4)
_waits = st.integers(min_value=1, max_value=10 * 366 * 24 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=100, deadline=None)
@given(product=_ids, price=_prices, quantity=st.integers(1, 10_000), wait=_waits, p=unit)
def test_every_reason_is_one_bounded_sentence_that_never_names_the_customer(
    product: str, price: Decimal, quantity: int, wait: timedelta, p: float
) -> None:
    customer = "CUSTOMER-7"  # upper case: never part of a generated product id
    config = TriggerConfig(browse_wait=wait, cart_wait=wait, high_intent_threshold=0.0)
    until = at("10:00") + wait
    stories: list[list[Timed]] = [
        [view("10:00", product, price=str(price), customer=customer)],
        [add("10:00", product, price=str(price), quantity=quantity, customer=customer)],
        [scored(page("10:00", customer=customer), p)],
    ]
    reasons = [
        fired.candidate.reason
        for events in stories
        for fired in run(events, config=config, until=until).fired
    ]
    assert len(reasons) == 3
    for reason in reasons:
        assert 0 < len(reason) <= MAX_REASON_CHARS
        assert customer not in reason
        assert "\n" not in reason


def test_a_long_product_id_is_cut_in_the_reason_not_in_the_payload() -> None:
    long_id = "p" * 128
    (fired,) = run([view("10:00", long_id)]).fired
    assert f"latest: {'p' * (MAX_REASON_ID_CHARS - 1)}…," in fired.candidate.reason
    assert isinstance(fired.candidate.payload, BrowsePayload)
    assert fired.candidate.payload.products[0].product_id == long_id


def test_a_deadline_round_trips_through_bytes() -> None:
    deadline = Deadline(customer_id=CUSTOMER, rule=BROWSE, key="s1", due_at=at("11:00"), attempt=1)
    assert Deadline.from_bytes(deadline.to_bytes()) == deadline


# --- the outbound contract -----------------------------------------------------

T = datetime(2024, 5, 1, 11, tzinfo=UTC)
PRODUCT = ViewedProduct(
    product_id="sku-1", price=Decimal("19.99"), currency="EUR", category="hats", viewed_at=T
)
PAYLOADS = {
    TriggerType.browse_abandonment: BrowsePayload(products=(PRODUCT,)),
    TriggerType.cart_abandonment: CartPayload(
        cart_id="cart-1",
        lines=(CartItem(product_id="sku-1", quantity=2, unit_price=Decimal("10")),),
        line_count=1,
        value=Decimal("20"),
        currency="EUR",
    ),
    TriggerType.high_intent: HighIntentPayload(
        offer=Offer(discount_percent=10, expires_at=T + timedelta(days=2)), products=(PRODUCT,)
    ),
}


def _message(trigger_type: TriggerType, **changes: Any) -> TriggerMessage:
    fields: dict[str, Any] = {
        "customer_id": "cus-1",
        "trigger_type": trigger_type,
        "key": "cart-1",
        "arm": Arm.treatment,
        "tier": Tier.vip,
        "segment": Segment.prospect,
        "occurred_at": T,
        "decided_at": T,
        "expires_at": T + timedelta(days=1),
        "score": 0.9,
        "model_version": "purchase-v3",
        "locale": "fr-FR",
        "time_zone": "Europe/Paris",
        "reason": "Why it fired",
        "payload": PAYLOADS[trigger_type],
    }
    return TriggerMessage(**{**fields, **changes})


@pytest.mark.parametrize("trigger_type", list(TriggerType))
def test_a_trigger_message_round_trips_and_keeps_its_id(trigger_type: TriggerType) -> None:
    message = _message(trigger_type)
    raw = message.to_bytes()
    assert TriggerMessage.from_bytes(raw) == message
    assert message.trigger_id == trigger_id("cus-1", trigger_type, "cart-1")
    assert b'"trigger_id":"' + message.trigger_id.encode() + b'"' in raw


def test_the_trigger_id_depends_on_customer_type_and_key_only() -> None:
    first = _message(TriggerType.cart_abandonment)
    later = _message(TriggerType.cart_abandonment, decided_at=T + timedelta(hours=3), score=0.1)
    assert first.trigger_id == later.trigger_id
    assert (
        len(
            {
                trigger_id("cus-1", "cart_abandonment", "cart-1"),
                trigger_id("cus-2", "cart_abandonment", "cart-1"),
                trigger_id("cus-1", "browse_abandonment", "cart-1"),
                trigger_id("cus-1", "cart_abandonment", "cart-2"),
            }
        )
        == 4
    )


def test_a_tampered_trigger_id_is_refused() -> None:
    data = orjson.loads(_message(TriggerType.cart_abandonment).to_bytes())
    data["trigger_id"] = "0" * 32
    with pytest.raises(ValidationError, match="trigger_id does not match"):
        TriggerMessage.from_bytes(orjson.dumps(data))


def test_the_payload_must_match_the_trigger_type() -> None:
    with pytest.raises(ValidationError, match=r"payload\.type"):
        _message(TriggerType.browse_abandonment, payload=PAYLOADS[TriggerType.cart_abandonment])


def test_a_decision_message_round_trips_and_needs_a_reason_unless_sent() -> None:
    fields: dict[str, Any] = {
        "trigger_id": trigger_id("cus-1", "cart_abandonment", "cart-1"),
        "customer_id": "cus-1",
        "trigger_type": TriggerType.cart_abandonment,
        "key": "cart-1",
        "outcome": Outcome.capped,
        "reason": DecisionReason.frequency_cap,
        "trigger_reason": "Why it fired",
        "tier": Tier.vip,
        "occurred_at": T,
        "decided_at": T,
        "retry_after": T + timedelta(hours=16),
    }
    message = DecisionMessage(**fields)
    assert DecisionMessage.from_bytes(message.to_bytes()) == message
    with pytest.raises(ValidationError, match="reason"):
        DecisionMessage(**{**fields, "reason": None})
    with pytest.raises(ValidationError, match="reason"):
        DecisionMessage(**{**fields, "outcome": Outcome.sent})
