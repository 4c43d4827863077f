"""Invariants of the profile reducer, over generated event streams (hypothesis)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.cart import (
    CartAdd,
    CartRemove,
    CheckoutStarted,
    OrderCompleted,
    OrderLine,
)
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.codec import InboundEvent
from schemas.customers import ConsentChanged, CustomerErased, ProfileAttributes
from schemas.email import (
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
)
from streams.core.engagement import engagement_rates
from streams.core.profile import Profile, Tombstone, purchase_summary, state_from_bytes
from streams.core.reducer import ProfileConfig, apply
from streams.core.rfm import rfm_scores

pytestmark = pytest.mark.unit

D = Decimal
CUSTOMER = "cus-1"
BASE = datetime(2024, 1, 1, tzinfo=UTC)
ZONES = [ZoneInfo(name) for name in ("UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati")]

minutes = st.integers(min_value=0, max_value=60 * 24 * 400)
money = st.decimals(min_value=D("0"), max_value=D("99999.9999"), places=4)
zones = st.sampled_from(ZONES)
as_of_offsets = st.integers(min_value=-60 * 24 * 30, max_value=60 * 24 * 800)


def at(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


def fold(events: Iterable[InboundEvent], config: ProfileConfig) -> Profile | Tombstone | None:
    state: Profile | Tombstone | None = None
    for event in events:
        state = apply(state, event, config).profile
    return state


def fold_profile(events: Iterable[InboundEvent], config: ProfileConfig) -> Profile:
    state = fold(events, config)
    assert isinstance(state, Profile)
    return state


def an_order(event_id: str, order_id: str, minute: int, total: Decimal) -> OrderCompleted:
    line = OrderLine(product_id="sku-1", quantity=1, unit_price=total)
    return OrderCompleted(
        event_id=event_id,
        customer_id=CUSTOMER,
        occurred_at=at(minute),
        order_id=order_id,
        lines=(line,),
        total=total,
        currency="EUR",
    )


@st.composite
def order_histories(
    draw: st.DrawFn,
) -> tuple[list[OrderCompleted], list[OrderCompleted]]:
    """Distinct orders, plus redeliveries (same event, or same order under a new id)."""
    specs = draw(st.lists(st.tuples(minutes, money), min_size=1, max_size=15))
    orders = [an_order(f"e{n}", f"o{n}", minute, total) for n, (minute, total) in enumerate(specs)]
    redeliveries = draw(
        st.lists(st.tuples(st.integers(0, len(orders) - 1), st.booleans()), max_size=10)
    )
    stream = list(orders)
    for n, (which, same_event) in enumerate(redeliveries):
        original = orders[which]
        event_id = original.event_id if same_event else f"again-{n}"
        stream.append(original.model_copy(update={"event_id": event_id}))
    return orders, stream


@given(order_histories(), st.randoms(use_true_random=False), zones, as_of_offsets)
@settings(max_examples=200, deadline=None)
def test_any_permutation_of_orders_gives_the_same_summary_and_revenue(
    history: tuple[list[OrderCompleted], list[OrderCompleted]],
    rng: Any,
    zone: ZoneInfo,
    as_of_minute: int,
) -> None:
    orders, stream = history
    config = ProfileConfig(business_tz=zone)
    shuffled = list(stream)
    rng.shuffle(shuffled)
    first, second = fold_profile(stream, config), fold_profile(shuffled, config)
    as_of = at(as_of_minute)

    assert purchase_summary(first, as_of, zone) == purchase_summary(second, as_of, zone)
    assert first.purchases.to_bytes() == second.purchases.to_bytes()
    assert first.purchases.revenue_total == sum((o.total for o in orders), D(0))
    assert first.purchases.order_count == len(orders)
    assert first.events_applied == second.events_applied == len(orders)
    assert rfm_scores(first, as_of, config.rfm) == rfm_scores(second, as_of, config.rfm)


@given(order_histories(), zones, as_of_offsets)
@settings(max_examples=200, deadline=None)
def test_recency_and_t_are_never_negative(
    history: tuple[list[OrderCompleted], list[OrderCompleted]], zone: ZoneInfo, as_of_minute: int
) -> None:
    profile = fold_profile(history[1], ProfileConfig(business_tz=zone))
    summary = purchase_summary(profile, at(as_of_minute), zone)
    assert 0 <= summary.recency <= summary.T
    assert 0 <= summary.frequency <= summary.recency
    assert summary.monetary_value >= 0
    assert 1 <= rfm_scores(profile, at(as_of_minute), ProfileConfig().rfm).r <= 5


# --- mixed streams -----------------------------------------------------------------

_EMAIL_CLASSES = (
    EmailSent,
    EmailDelivered,
    EmailOpen,
    EmailClick,
    EmailUnsubscribe,
    EmailComplaint,
)


def _event(draw: st.DrawFn, n: int) -> InboundEvent:
    """One event of any kind but erasure, with few distinct ids so they collide."""
    kind = draw(st.integers(0, 13))
    common: dict[str, Any] = {
        "event_id": f"e{n}",
        "customer_id": CUSTOMER,
        "occurred_at": at(draw(minutes)),
        "session_id": draw(st.sampled_from(["s1", "s2", None])),
    }
    product = draw(st.sampled_from(["sku-1", "sku-2", "sku-3"]))
    cart = draw(st.sampled_from(["k1", "k2"]))
    email: dict[str, Any] = {"campaign_id": "cmp", "message_id": f"m{n}"}
    line: dict[str, Any] = {
        "product_id": product,
        "quantity": draw(st.integers(1, 3)),
        "currency": "EUR",
    }
    price = draw(money)
    match kind:
        case 0:
            return PageView(**common, url="https://shop.example/")
        case 1:
            return ProductView(**common, product_id=product, price=price, currency="EUR")
        case 2:
            return CategoryView(**common, category=draw(st.sampled_from(["Shoes", "Bags"])))
        case 3:
            return Search(**common, query=draw(st.sampled_from(["red", "Red", "blue"])))
        case 4:
            return CartAdd(**common, cart_id=cart, unit_price=price, **line)
        case 5:
            return CartRemove(**common, cart_id=cart, unit_price=price, **line)
        case 6:
            return CheckoutStarted(**common, cart_id=cart)
        case 7:
            order_line = OrderLine(product_id=product, quantity=1, unit_price=price)
            return OrderCompleted(
                **common,
                order_id=f"o{n}",
                lines=(order_line,),
                total=price,
                currency="EUR",
                cart_id=draw(st.sampled_from(["k1", "k2", None])),
            )
        case 8:
            bounce_type: Any = draw(st.sampled_from(["hard", "soft", "soft"]))
            return EmailBounce(**common, **email, bounce_type=bounce_type)
        case 9:
            return ConsentChanged(**common, channel="email", granted=draw(st.booleans()))
        case 10:
            zone = draw(st.sampled_from(["Europe/Paris", "Asia/Tokyo", None]))
            locale = draw(st.sampled_from(["fr-FR", "de", None] if zone else ["fr-FR", "de"]))
            return ProfileAttributes(**common, time_zone=zone, locale=locale)
        case _:
            cls = draw(st.sampled_from(_EMAIL_CLASSES))
            event: InboundEvent = cls(**common, **email)
            return event


@st.composite
def mixed_streams(draw: st.DrawFn) -> list[InboundEvent]:
    """Up to 40 distinct events, some redelivered (fewer than the dedupe window)."""
    events = [_event(draw, n) for n in range(draw(st.integers(1, 40)))]
    repeats = draw(st.lists(st.sampled_from(events), max_size=10))
    orders = [e for e in events if isinstance(e, OrderCompleted)]
    again = draw(st.lists(st.sampled_from(orders), max_size=3)) if orders else []
    renamed = [o.model_copy(update={"event_id": f"again-{n}"}) for n, o in enumerate(again)]
    return events + repeats + renamed


def order_independent(profile: Profile) -> dict[str, object]:
    no_decay = {"sends_decayed": None, "opens_decayed": None, "clicks_decayed": None}
    return {
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "events_applied": profile.events_applied,
        # Which event id of a redelivered order gets applied depends on arrival.
        "event_ids": len(profile.recent_event_ids),
        "purchases": profile.purchases.to_bytes(),
        "engagement": profile.engagement.model_copy(update=no_decay),
        "email_consent": profile.email_consent,
        "time_zone": profile.time_zone,
        "locale": profile.locale,
        "segment": (profile.segment, profile.segment_as_of),
    }


def assert_decay_close(first: Profile, second: Profile) -> None:
    for name in ("sends_decayed", "opens_decayed", "clicks_decayed"):
        ours, theirs = getattr(first.engagement, name), getattr(second.engagement, name)
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert ours.at == theirs.at
            # Float sums in another order: equal to rounding, not bit for bit.
            assert ours.d7 == pytest.approx(theirs.d7, rel=1e-9)
            assert ours.d30 == pytest.approx(theirs.d30, rel=1e-9)


@given(mixed_streams(), st.randoms(use_true_random=False), zones)
@settings(max_examples=200, deadline=None)
def test_shuffled_streams_give_equal_order_independent_fields(
    stream: list[InboundEvent], rng: Any, zone: ZoneInfo
) -> None:
    config = ProfileConfig(business_tz=zone, max_soft_bounces=3)
    shuffled = list(stream)
    rng.shuffle(shuffled)
    first, second = fold_profile(stream, config), fold_profile(shuffled, config)

    assert order_independent(first) == order_independent(second)
    assert_decay_close(first, second)
    as_of = at(60 * 24 * 500)
    rates, again = engagement_rates(first, as_of), engagement_rates(second, as_of)
    for name in ("open_rate_7d", "click_rate_7d", "open_rate_30d", "click_rate_30d"):
        assert getattr(rates, name) == pytest.approx(getattr(again, name), rel=1e-9, abs=1e-300)
    distinct = {event.event_id for event in stream if not event.event_id.startswith("again-")}
    assert first.events_applied == len(distinct)


@given(mixed_streams(), st.randoms(use_true_random=False), minutes)
@settings(max_examples=100, deadline=None)
def test_an_erasure_anywhere_leaves_the_same_tombstone(
    stream: list[InboundEvent], rng: Any, minute: int
) -> None:
    erasure = CustomerErased(event_id="bye", customer_id=CUSTOMER, occurred_at=at(minute))
    shuffled = [*stream, erasure]
    rng.shuffle(shuffled)
    assert fold(shuffled, ProfileConfig()) == Tombstone(customer_id=CUSTOMER, erased_at=at(minute))


@given(mixed_streams(), zones)
@settings(max_examples=200, deadline=None)
def test_profiles_round_trip_through_bytes(stream: list[InboundEvent], zone: ZoneInfo) -> None:
    profile = fold_profile(stream, ProfileConfig(business_tz=zone))
    raw = profile.to_bytes()
    back = Profile.from_bytes(raw)
    assert back == profile
    assert back.to_bytes() == raw
    assert state_from_bytes(raw) == profile
    assert back.purchases.revenue_total == profile.purchases.revenue_total
    assert all(isinstance(total, Decimal) for total in back.purchases.purchase_days.values())
