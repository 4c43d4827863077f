"""The policy, rule by rule: suppression, the frequency cap, quiet hours, holdout, records."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.codec import InboundEvent
from schemas.triggers import (
    Arm,
    BrowsePayload,
    CartItem,
    CartPayload,
    HighIntentPayload,
    Offer,
    Outcome,
    TriggerPayload,
    TriggerType,
    ViewedProduct,
    trigger_id,
)
from streams.core.policy import (
    Decision,
    PolicyConfig,
    QuietHours,
    apply_decision,
    decide,
    holdout_bucket,
    in_holdout,
    reoffer,
    suppression_reason,
)
from streams.core.profile import DECIDED_KEYS_KEPT, Tombstone, record_trigger, state_from_bytes
from streams.core.triggers.base import Candidate, Deadline, Score, Tier
from tests.unit.test_trigger_timeline import (
    CUSTOMER,
    at,
    bounce,
    complaint,
    consent,
    delivered,
    page,
    profile_of,
    unsubscribe,
    zone,
)

pytestmark = pytest.mark.unit

OPEN = PolicyConfig(holdout_share=0.0)
SALT = "exp-1"
BROWSE, CART, HIGH = (
    TriggerType.browse_abandonment,
    TriggerType.cart_abandonment,
    TriggerType.high_intent,
)


def _payload(trigger_type: TriggerType, when: datetime) -> TriggerPayload:
    product = ViewedProduct(
        product_id="sku-1", price=Decimal("20"), currency="EUR", category=None, viewed_at=when
    )
    if trigger_type is BROWSE:
        return BrowsePayload(products=(product,))
    if trigger_type is CART:
        line = CartItem(product_id="sku-1", quantity=1, unit_price=Decimal("20"))
        return CartPayload(
            cart_id="cart-1", lines=(line,), line_count=1, value=Decimal("20"), currency="EUR"
        )
    return HighIntentPayload(offer=Offer(discount_percent=10, expires_at=when + timedelta(days=2)))


def candidate(
    trigger_type: TriggerType = BROWSE,
    when: datetime | None = None,
    *,
    key: str = "s1",
    customer: str = CUSTOMER,
    attempt: int = 0,
    offered_at: datetime | None = None,
    reoffer: bool | None = None,
) -> Candidate:
    when = when or at("11:00")
    return Candidate(
        customer_id=customer,
        trigger_type=trigger_type,
        key=key,
        occurred_at=when,
        offered_at=offered_at or when,
        attempt=attempt,
        reoffer=trigger_type is not HIGH if reoffer is None else reoffer,
        tier=Tier.discount,
        score=Score(0.5, "m1"),
        reason=f"A {trigger_type.value} scenario",
        payload=_payload(trigger_type, when),
    )


OK = profile_of(consent())
"""A customer who granted consent a month ago and never bounced or complained."""


# --- suppression ---------------------------------------------------------------

SUPPRESSION = [
    ("consent granted, nothing else -> sent", [consent()], OPEN, None),
    ("unsubscribed -> suppressed", [consent(), unsubscribe()], OPEN, "unsubscribed"),
    (
        "unsubscribed, then granted consent again -> sent",
        [consent(), unsubscribe(day=-2), consent(day=-1)],
        OPEN,
        None,
    ),
    (
        "granted consent, unsubscribed later -> suppressed",
        [consent(day=-2), unsubscribe(day=-1)],
        OPEN,
        "unsubscribed",
    ),
    ("marked an email as spam -> suppressed", [consent(), complaint()], OPEN, "complained"),
    (
        "complained, then granted consent again -> sent",
        [consent(), complaint(day=-2), consent(day=-1)],
        OPEN,
        None,
    ),
    ("first hard bounce -> suppressed", [consent(), bounce("hard")], OPEN, "hard_bounced"),
    (
        "hard bounce, delivered since -> still suppressed (the first is final)",
        [consent(), bounce("hard", day=-3), delivered(day=-1)],
        OPEN,
        "hard_bounced",
    ),
    (
        "7 soft bounces in a row -> suppressed",
        [consent(), *[bounce("soft", f"0{n}:00") for n in range(7)]],
        OPEN,
        "soft_bounces",
    ),
    (
        "6 soft bounces in a row -> sent",
        [consent(), *[bounce("soft", f"0{n}:00") for n in range(6)]],
        OPEN,
        None,
    ),
    (
        "7 soft bounces broken by a delivery -> sent",
        [consent(), *[bounce("soft", f"0{n}:00") for n in range(7)], delivered("03:30")],
        OPEN,
        None,
    ),
    (
        "3 soft bounces with a limit of 3 -> suppressed",
        [consent(), *[bounce("soft", f"0{n}:00") for n in range(3)]],
        PolicyConfig(holdout_share=0, soft_bounce_limit=3),
        "soft_bounces",
    ),
    ("revoked consent -> suppressed", [consent(), consent(False, day=-1)], OPEN, "no_consent"),
    ("never stated consent -> suppressed by default", [page("09:00")], OPEN, "no_consent"),
    (
        "never stated consent, consent not required -> sent",
        [page("09:00")],
        PolicyConfig(holdout_share=0, require_granted_consent=False),
        None,
    ),
    (
        "revoked consent, consent not required -> still suppressed",
        [consent(False)],
        PolicyConfig(holdout_share=0, require_granted_consent=False),
        "no_consent",
    ),
]


@pytest.mark.parametrize(
    ("events", "config", "reason"),
    [case[1:] for case in SUPPRESSION],
    ids=[case[0] for case in SUPPRESSION],
)
def test_suppression(events: list[InboundEvent], config: PolicyConfig, reason: str | None) -> None:
    profile = profile_of(*events)
    decision = decide(profile, candidate(), at("11:00"), config, SALT)
    if reason is None:
        assert (decision.outcome, decision.reason) == (Outcome.sent, None)
        assert decision.trigger is not None
    else:
        assert decision.outcome is Outcome.suppressed
        assert str(decision.reason) == reason
        assert decision.trigger is None
        assert decision.destination is None
        recorded = apply_decision(profile, decision)
        assert recorded.last_trigger_at == profile.last_trigger_at
        assert recorded.decided_keys == {"browse_abandonment": ("s1",)}


def test_an_erased_customer_is_suppressed() -> None:
    tombstone = Tombstone(customer_id=CUSTOMER, erased_at=at("10:00"))
    decision = decide(tombstone, candidate(), at("11:00"), OPEN, SALT)
    assert (decision.outcome.value, str(decision.reason)) == ("suppressed", "erased")
    assert apply_decision(tombstone, decision) is tombstone
    assert suppression_reason(tombstone, OPEN) is not None


def test_suppression_comes_before_the_cap_and_the_holdout() -> None:
    profile = record_trigger(profile_of(consent(), unsubscribe()), "high_intent", at("10:00"))
    everyone_held_out = PolicyConfig(holdout_share=1.0)
    decision = decide(profile, candidate(), at("11:00"), everyone_held_out, SALT)
    assert decision.outcome is Outcome.suppressed


# --- the frequency cap ---------------------------------------------------------


def _sequence(
    offers: list[tuple[TriggerType, datetime]], config: PolicyConfig = OPEN
) -> list[Decision]:
    profile, decisions = OK, []
    for n, (trigger_type, when) in enumerate(offers):
        decision = decide(profile, candidate(trigger_type, when, key=f"k{n}"), when, config, SALT)
        profile = apply_decision(profile, decision)
        decisions.append(decision)
    return decisions


CAP = [
    ("a second trigger 2 h later -> capped", [(BROWSE, "11:00", 0), (CART, "13:00", 0)], "sc"),
    ("a second trigger 15:59 later -> capped", [(BROWSE, "11:00", 0), (CART, "02:59", 1)], "sc"),
    (
        "a second trigger exactly 16 h later -> sent",
        [(BROWSE, "11:00", 0), (CART, "03:00", 1)],
        "ss",
    ),
    ("a second trigger 20 h later -> sent", [(BROWSE, "11:00", 0), (CART, "07:00", 1)], "ss"),
    (
        "three triggers in a day -> the first and the one 16 h later",
        [(HIGH, "08:00", 0), (BROWSE, "12:00", 0), (CART, "00:00", 1)],
        "scs",
    ),
    (
        "a decision out of order, before a trigger already sent -> capped",
        [(CART, "12:00", 0), (BROWSE, "11:00", 0)],
        "sc",
    ),
]


@pytest.mark.parametrize(
    ("offers", "expected"), [case[1:] for case in CAP], ids=[case[0] for case in CAP]
)
def test_frequency_cap(offers: list[tuple[TriggerType, str, int]], expected: str) -> None:
    decisions = _sequence([(kind, at(clock, day)) for kind, clock, day in offers])
    assert "".join(d.outcome.value[0] for d in decisions) == expected


def test_two_per_window_lets_a_second_type_through_but_never_the_same_type() -> None:
    two = PolicyConfig(holdout_share=0, cap_count=2)
    offers = [(BROWSE, at("08:00")), (CART, at("09:00")), (HIGH, at("10:00"))]
    assert [d.outcome.value for d in _sequence(offers, two)] == ["sent", "sent", "capped"]
    same = [(CART, at("08:00")), (CART, at("09:00"))]
    assert [d.outcome.value for d in _sequence(same, two)] == ["sent", "capped"]


def test_a_capped_trigger_says_when_the_cap_frees_and_is_offered_once_more() -> None:
    profile = record_trigger(OK, "high_intent", at("10:00"))
    decision = decide(profile, candidate(BROWSE, at("11:00")), at("11:05"), OPEN, SALT)
    assert (decision.outcome, decision.retry_after) == (Outcome.capped, at("02:00", day=1))
    assert not decision.final
    assert decision.decided_at == at("11:05")
    assert reoffer(decision) == Deadline(
        customer_id=CUSTOMER, rule=BROWSE, key="s1", due_at=at("02:00", day=1), attempt=1
    )
    assert apply_decision(profile, decision) == profile
    message = decision.message()
    assert (message.outcome, message.retry_after) == (Outcome.capped, at("02:00", day=1))


@pytest.mark.parametrize(
    ("story", "changes", "config"),
    [
        ("a second offer is never re-offered", {"attempt": 1}, OPEN),
        ("a rule may refuse re-offers (high intent does)", {"reoffer": False}, OPEN),
        ("re-offers turned off", {}, PolicyConfig(holdout_share=0, reoffer_capped=False)),
        (
            "the cap frees too long after the trigger",
            {},
            PolicyConfig(holdout_share=0, reoffer_within=timedelta(hours=12)),
        ),
    ],
)
def test_no_retry(story: str, changes: dict[str, Any], config: PolicyConfig) -> None:
    profile = record_trigger(OK, "high_intent", at("10:00"))
    decision = decide(profile, candidate(BROWSE, at("11:00"), **changes), at("11:00"), config, SALT)
    assert decision.outcome is Outcome.capped
    assert decision.retry_after is None
    assert reoffer(decision) is None
    # Not offered again, so this was the trigger's last decision: the key is closed.
    assert decision.final
    recorded = apply_decision(profile, decision)
    assert recorded.decided_keys == {"browse_abandonment": ("s1",)}
    assert recorded.last_trigger_at == profile.last_trigger_at


def test_a_re_offer_is_judged_when_offered() -> None:
    profile = record_trigger(OK, "high_intent", at("10:00"))
    again = candidate(BROWSE, at("11:00"), attempt=1, offered_at=at("02:00", day=1))
    decision = decide(profile, again, at("02:00", day=1), OPEN, SALT)
    assert decision.outcome is Outcome.sent
    assert apply_decision(profile, decision).last_trigger_at["browse_abandonment"] == at(
        "02:00", day=1
    )
    assert decision.trigger is not None
    assert (decision.trigger.occurred_at, decision.trigger.attempt) == (at("11:00"), 1)


# --- quiet hours -------------------------------------------------------------

NIGHT = PolicyConfig(holdout_share=0, quiet_hours=QuietHours(time(21, 0), time(8, 0)))

QUIET = [
    # (story, customer's zone, offered at (UTC), expected send_after (UTC) or None)
    (
        "Paris, 22:30 local (20:30 UTC) -> held until 08:00 local",
        "Europe/Paris",
        at("20:30"),
        at("06:00", day=1),
    ),
    ("New York, 16:30 local -> sent now", "America/New_York", at("20:30"), None),
    (
        "Tokyo, 05:30 local next day -> held until 08:00 local (23:00 UTC)",
        "Asia/Tokyo",
        at("20:30"),
        at("23:00"),
    ),
    ("Paris, 07:59 local -> held a minute", "Europe/Paris", at("05:59"), at("06:00")),
    ("Paris, exactly 08:00 local -> sent (the end is open)", "Europe/Paris", at("06:00"), None),
    (
        "Paris, exactly 21:00 local -> held (the start is closed)",
        "Europe/Paris",
        at("19:00"),
        at("06:00", day=1),
    ),
    ("no zone told: the default zone (UTC), 20:30 -> sent", None, at("20:30"), None),
    ("no zone told: UTC 21:30 -> held until 08:00 UTC", None, at("21:30"), at("08:00", day=1)),
    (
        "Paris on the night clocks go forward -> 08:00 CEST",
        "Europe/Paris",
        datetime.fromisoformat("2024-03-30T22:30:00+00:00"),
        datetime.fromisoformat("2024-03-31T06:00:00+00:00"),
    ),
]


@pytest.mark.parametrize(
    ("time_zone", "offered", "send_after"),
    [case[1:] for case in QUIET],
    ids=[case[0] for case in QUIET],
)
def test_quiet_hours_in_the_customers_zone(
    time_zone: str | None, offered: datetime, send_after: datetime | None
) -> None:
    events = [consent(day=-400)] + ([zone(time_zone, day=-400)] if time_zone else [])
    profile = profile_of(*events)
    decision = decide(profile, candidate(BROWSE, offered), offered, NIGHT, SALT)
    assert decision.send_after == send_after
    assert decision.outcome is (Outcome.sent if send_after is None else Outcome.deferred)
    assert decision.destination == "outbound"
    assert decision.trigger is not None
    assert decision.trigger.send_after == send_after
    assert decision.trigger.time_zone == time_zone
    expected_record = send_after or offered
    assert apply_decision(profile, decision).last_trigger_at["browse_abandonment"] == (
        expected_record
    )


def test_quiet_hours_within_a_day_and_off_by_default() -> None:
    lunch = PolicyConfig(holdout_share=0, quiet_hours=QuietHours(time(12, 0), time(14, 0)))
    assert decide(OK, candidate(when=at("13:00")), at("13:00"), lunch, SALT).send_after == at(
        "14:00"
    )
    assert decide(OK, candidate(when=at("14:30")), at("14:30"), lunch, SALT).send_after is None
    assert decide(OK, candidate(when=at("03:00")), at("03:00"), OPEN, SALT).send_after is None


def test_a_trigger_deferred_to_the_morning_caps_one_offered_the_evening_before() -> None:
    profile = profile_of(consent(), zone("Europe/Paris"))
    first = decide(profile, candidate(BROWSE, at("20:30")), at("20:30"), NIGHT, SALT)
    profile = apply_decision(profile, first)
    second = decide(profile, candidate(CART, at("20:45"), key="cart-1"), at("20:45"), NIGHT, SALT)
    assert (first.outcome, second.outcome) == (Outcome.deferred, Outcome.capped)
    # The cap frees at 22:00 the next day (the 06:00 send + 16 h): more than
    # reoffer_within (24 h) after the cart trigger, so it is not offered again.
    assert second.retry_after is None
    patient = PolicyConfig(
        holdout_share=0, quiet_hours=NIGHT.quiet_hours, reoffer_within=timedelta(hours=48)
    )
    third = decide(profile, candidate(CART, at("20:45"), key="cart-1"), at("20:45"), patient, SALT)
    assert third.retry_after == at("22:00", day=1)


def test_bad_quiet_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="start != end"):
        QuietHours(time(8), time(8))
    with pytest.raises(ValueError, match="naive"):
        QuietHours(time(21, tzinfo=ZoneInfo("UTC")), time(8))


# --- holdout -----------------------------------------------------------------


def test_the_holdout_share_is_within_one_point_over_100000_customers() -> None:
    held = sum(in_holdout(f"customer-{n}", SALT, 0.05) for n in range(100_000))
    assert 0.04 <= held / 100_000 <= 0.06


def test_holdout_is_stable_per_customer_and_salt_and_reshuffled_by_a_new_salt() -> None:
    ids = [f"customer-{n}" for n in range(20_000)]
    first = {i for i in ids if in_holdout(i, SALT, 0.05)}
    assert first == {i for i in ids if in_holdout(i, SALT, 0.05)}
    other = {i for i in ids if in_holdout(i, "exp-2", 0.05)}
    # Independent draws overlap on about 5% of 5%: far from identical.
    assert len(first & other) < len(first) / 4
    assert all(0 <= holdout_bucket(i, SALT) < 10_000 for i in ids[:1000])


def test_holdout_share_zero_and_one() -> None:
    assert not any(in_holdout(f"c{n}", SALT, 0.0) for n in range(2000))
    assert all(in_holdout(f"c{n}", SALT, 1.0) for n in range(2000))


def test_a_held_out_trigger_is_recorded_and_published_to_the_holdout_only() -> None:
    everyone = PolicyConfig(holdout_share=1.0)
    decision = decide(OK, candidate(CART, key="cart-1"), at("11:00"), everyone, SALT)
    assert (decision.outcome, decision.destination) == (Outcome.holdout, "holdout")
    assert decision.trigger is not None
    assert decision.trigger.arm is Arm.holdout
    profile = apply_decision(OK, decision)
    assert profile.last_trigger_at == {"cart_abandonment": at("11:00")}
    # Same cadence as the treated: the next trigger within 16 h is capped.
    later = decide(profile, candidate(BROWSE, at("12:00")), at("12:00"), everyone, SALT)
    assert later.outcome is Outcome.capped


# --- records and ids ---------------------------------------------------------


def test_a_sent_trigger_is_recorded_at_the_time_it_was_offered() -> None:
    decision = decide(OK, candidate(HIGH, at("10:05")), at("10:07"), OPEN, SALT)
    assert decision.outcome is Outcome.sent
    recorded = apply_decision(OK, decision)
    assert recorded.last_trigger_at == {"high_intent": at("10:05")}
    assert recorded.decided_keys == {"high_intent": ("s1",)}


def test_decided_keys_keep_the_last_few_per_type() -> None:
    profile = OK
    for n in range(DECIDED_KEYS_KEPT + 2):
        offer = candidate(CART, at("11:00", day=8 * n), key=f"cart-{n}")
        profile = apply_decision(profile, decide(profile, offer, offer.offered_at, OPEN, SALT))
    later = at("11:00", day=60)
    profile = apply_decision(profile, decide(profile, candidate(when=later), later, OPEN, SALT))
    kept = tuple(f"cart-{n}" for n in range(2, DECIDED_KEYS_KEPT + 2))
    assert profile.decided_keys == {"browse_abandonment": ("s1",), "cart_abandonment": kept}


def test_a_profile_stored_before_decided_keys_existed_reads_back_with_none() -> None:
    stored = orjson.loads(OK.to_bytes())
    del stored["decided_keys"]
    assert state_from_bytes(orjson.dumps(stored)) == OK
    assert OK.decided_keys == {}


def test_the_trigger_message_carries_ids_tier_score_and_context_only() -> None:
    profile = profile_of(consent(), zone("Europe/Paris", "fr_fr"))
    decision = decide(profile, candidate(BROWSE, at("11:00")), at("11:02"), OPEN, SALT)
    message = decision.trigger
    assert message is not None
    assert message.trigger_id == trigger_id(CUSTOMER, "browse_abandonment", "s1")
    assert (message.tier, message.score, message.model_version) == (Tier.discount, 0.5, "m1")
    assert (message.locale, message.time_zone) == ("fr-FR", "Europe/Paris")
    assert (message.occurred_at, message.decided_at) == (at("11:00"), at("11:02"))
    assert message.expires_at == at("11:00", day=1)
    assert message.segment.value == "prospect"
    assert message.reason == decision.message().trigger_reason == "A browse_abandonment scenario"


def test_the_same_inputs_give_the_same_ids_and_bytes() -> None:
    first = decide(OK, candidate(CART, key="cart-1"), at("11:00"), OPEN, SALT)
    again = decide(OK, candidate(CART, key="cart-1"), at("11:00"), OPEN, SALT)
    assert (
        first.trigger_id == again.trigger_id == trigger_id(CUSTOMER, "cart_abandonment", "cart-1")
    )
    assert first.message().to_bytes() == again.message().to_bytes()
    assert first.trigger is not None
    assert again.trigger is not None
    assert first.trigger.to_bytes() == again.trigger.to_bytes()
    other = decide(OK, candidate(CART, key="cart-2"), at("11:00"), OPEN, SALT)
    assert other.trigger_id != first.trigger_id


def test_decide_refuses_a_naive_clock_and_another_customers_candidate() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(OK, candidate(), datetime(2024, 5, 1), OPEN, SALT)  # noqa: DTZ001
    with pytest.raises(ValueError, match="profile of"):
        decide(OK, candidate(customer="cus-2"), at("11:00"), OPEN, SALT)


@pytest.mark.parametrize(
    "bad",
    [
        {"cap_count": 0},
        {"soft_bounce_limit": 0},
        {"cap_window": timedelta(0)},
        {"holdout_share": 1.5},
        {"trigger_ttl": timedelta(hours=-1)},
    ],
)
def test_bad_policy_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        PolicyConfig(**bad)
