"""Features against profiles worked out by hand, and their invariants (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.features import BOUNDS, EVENT_FEATURES, FEATURE_NAMES, features
from schemas.cart import CartAdd, CheckoutStarted, OrderCompleted, OrderLine
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.codec import InboundEvent
from schemas.customers import ProfileAttributes
from schemas.email import EmailBounce, EmailClick, EmailOpen, EmailSent
from streams.core.profile import Profile
from streams.core.reducer import ProfileConfig, apply

pytestmark = pytest.mark.unit

D = Decimal
C = "cus-1"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # a Wednesday
CONFIG = ProfileConfig()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def days(n: float) -> float:
    return n * 24 * 60


class Ev:
    """Event builders; ``n`` numbers event ids."""

    n = 0

    @classmethod
    def _id(cls) -> str:
        cls.n += 1
        return f"e{cls.n}"

    @classmethod
    def page(cls, minute: float, session: str | None = "s1") -> PageView:
        return PageView(
            event_id=cls._id(),
            customer_id=C,
            occurred_at=at(minute),
            session_id=session,
            url="https://shop.example/",
        )

    @classmethod
    def view(cls, minute: float, product: str, price: str, session: str = "s1") -> ProductView:
        return ProductView(
            event_id=cls._id(),
            customer_id=C,
            occurred_at=at(minute),
            session_id=session,
            product_id=product,
            price=D(price),
            currency="EUR",
            category="shoes",
        )

    @classmethod
    def category(cls, minute: float, name: str) -> CategoryView:
        return CategoryView(
            event_id=cls._id(),
            customer_id=C,
            occurred_at=at(minute),
            session_id="s1",
            category=name,
        )

    @classmethod
    def search(cls, minute: float, query: str) -> Search:
        return Search(
            event_id=cls._id(), customer_id=C, occurred_at=at(minute), session_id="s1", query=query
        )

    @classmethod
    def add(cls, minute: float, product: str, quantity: int, price: str) -> CartAdd:
        return CartAdd(
            event_id=cls._id(),
            customer_id=C,
            occurred_at=at(minute),
            session_id="s1",
            cart_id="k1",
            product_id=product,
            quantity=quantity,
            unit_price=D(price),
            currency="EUR",
        )

    @classmethod
    def checkout(cls, minute: float) -> CheckoutStarted:
        return CheckoutStarted(
            event_id=cls._id(), customer_id=C, occurred_at=at(minute), session_id="s1", cart_id="k1"
        )

    @classmethod
    def order(cls, minute: float, total: str) -> OrderCompleted:
        event_id = cls._id()
        return OrderCompleted(
            event_id=event_id,
            customer_id=C,
            occurred_at=at(minute),
            order_id=f"o-{event_id}",
            lines=(OrderLine(product_id="sku", quantity=1, unit_price=D(total)),),
            total=D(total),
            currency="EUR",
        )

    @classmethod
    def email(cls, kind: type[Any], minute: float, **extra: Any) -> Any:
        return kind(
            event_id=cls._id(),
            customer_id=C,
            occurred_at=at(minute),
            campaign_id="cmp",
            message_id=f"m{cls.n}",
            **extra,
        )

    @classmethod
    def zone(cls, minute: float, name: str) -> ProfileAttributes:
        return ProfileAttributes(
            event_id=cls._id(), customer_id=C, occurred_at=at(minute), time_zone=name
        )


def profile_of(events: Iterable[InboundEvent], config: ProfileConfig = CONFIG) -> Profile:
    state: Any = None
    for event in events:
        state = apply(state, event, config).profile
    assert isinstance(state, Profile)
    return state


def approx(expected: dict[str, float]) -> dict[str, Any]:
    return {name: pytest.approx(value, abs=1e-9) for name, value in expected.items()}


# --- table: a known profile gives known features -----------------------------------

CASES = [
    pytest.param(
        lambda: [Ev.page(0)],
        at(30),
        {
            "rfm_r": 0.0,
            "rfm_f": 0.0,
            "rfm_m": 0.0,
            "has_ordered": 0.0,
            "orders_log": 0.0,
            "days_since_last_order": 365.0,  # never ordered: the cap, with has_ordered = 0
            "has_session": 1.0,
            "days_since_last_visit": 30 / 1440,
            "session_dwell_minutes": 30.0,
            "session_idle_minutes": 30.0,
            "has_cart": 0.0,
            "open_rate_7d": 0.0,
        },
        id="first-visit",
    ),
    pytest.param(
        lambda: [Ev.order(0, "120"), Ev.order(days(10), "30")],
        at(days(25)),
        {
            "rfm_r": 5.0,  # 15 days since the last order
            "rfm_f": 2.0,  # two orders
            "rfm_m": 2.0,  # 150 of revenue: (50, 150]
            "has_ordered": 1.0,
            "orders_log": math.log1p(2),
            "revenue_log": math.log1p(150),
            "btyd_frequency_log": math.log1p(1),
            "btyd_recency_days": 10.0,
            "btyd_t_days": 25.0,
            "btyd_monetary_log": math.log1p(30),
            "days_since_last_order": 15.0,
            "has_session": 0.0,  # orders are not session activity
            "days_since_last_visit": 365.0,
        },
        id="two-orders",
    ),
    pytest.param(
        lambda: [
            Ev.view(0, "a", "20"),
            Ev.view(2, "b", "40"),
            Ev.view(4, "c", "60"),
            Ev.view(5, "a", "20"),  # seen again: still three products
            Ev.category(6, "Shoes"),
            Ev.search(7, "red boots"),
            Ev.search(8, "Red Boots"),  # the same search, ignoring case
        ],
        at(10),
        {
            "session_products": 3.0,
            "session_categories": 1.0,
            "session_searches": 1.0,
            "session_dwell_minutes": 10.0,
            "session_idle_minutes": 2.0,
            "viewed_price_mean_log": math.log1p(40),
            "viewed_price_max_log": math.log1p(60),
        },
        id="browsing-session",
    ),
    pytest.param(
        lambda: [Ev.add(0, "a", 2, "10"), Ev.add(3, "b", 1, "5"), Ev.checkout(5)],
        at(50),
        {
            "has_cart": 1.0,
            "cart_value_log": math.log1p(25),
            "cart_lines": 2.0,
            "cart_age_minutes": 45.0,  # since the cart last changed (checkout at 5)
            "checkout_started": 1.0,
        },
        id="cart-in-checkout",
    ),
    pytest.param(
        lambda: [
            Ev.email(EmailSent, 0),
            Ev.email(EmailOpen, 10),
            Ev.email(EmailClick, 11),
            Ev.email(EmailBounce, 20, bounce_type="soft"),
            Ev.email(EmailBounce, 30, bounce_type="soft"),
        ],
        at(30),
        {
            "emails_sent_log": math.log1p(1),
            "soft_bounce_streak": 2.0,
        },
        id="email-history",
    ),
    pytest.param(
        lambda: [Ev.order(0, "5000000"), Ev.page(days(1)), Ev.add(days(1), "a", 1, "2000000")],
        at(days(800)),
        {
            "days_since_last_order": 365.0,  # capped
            "days_since_last_visit": 365.0,
            "revenue_log": math.log1p(1_000_000),  # capped amount
            "cart_value_log": math.log1p(1_000_000),
            "cart_age_minutes": 10080.0,  # a week
            "session_dwell_minutes": 240.0,
            "session_idle_minutes": 240.0,
            "btyd_t_days": 800.0,
            "rfm_r": 1.0,
        },
        id="caps",
    ),
    pytest.param(
        lambda: [Ev.page(0), Ev.order(days(2), "10")],
        at(-60),  # scoring before what the profile already knows
        {
            "days_since_last_order": 0.0,
            "days_since_last_visit": 0.0,
            "session_dwell_minutes": 0.0,
            "session_idle_minutes": 0.0,
            "btyd_t_days": 0.0,
        },
        id="now-before-profile-times-counts-zero",
    ),
]


@pytest.mark.parametrize(("events", "now", "expected"), CASES)
def test_a_known_profile_gives_known_features(
    events: Any, now: datetime, expected: dict[str, float]
) -> None:
    x = features(profile_of(events()), None, now, CONFIG)
    assert {name: x[name] for name in expected} == approx(expected)


def test_engagement_rates_are_the_profiles_decayed_rates() -> None:
    profile = profile_of([Ev.email(EmailSent, 0), Ev.email(EmailOpen, 60)])
    x = features(profile, None, at(days(7)), CONFIG)
    # one open answering one send: the ratio of two equally decayed counts
    assert x["open_rate_7d"] == pytest.approx(math.exp(60 / days(7)))
    assert x["click_rate_7d"] == 0.0


def test_caps_hold_beyond_the_default_list_bounds() -> None:
    config = ProfileConfig(max_products_viewed=80)
    events = [Ev.view(n * 0.1, f"p{n}", "1") for n in range(70)]
    x = features(profile_of(events, config), None, at(10), config)
    assert x["session_products"] == 50.0


# --- time of day in the customer's zone --------------------------------------------

ZONE_CASES = [
    # 2024-05-03 16:00 UTC is a Friday
    pytest.param(None, 16.0, 4, 0.0, id="unknown-zone-is-utc"),
    pytest.param("Asia/Tokyo", 1.0, 5, 1.0, id="tokyo-is-already-saturday"),
    pytest.param("America/New_York", 12.0, 4, 1.0, id="new-york-summer-time"),
    pytest.param("Asia/Kolkata", 21.5, 4, 1.0, id="half-hour-offset"),
]


@pytest.mark.parametrize(("zone", "hour", "weekday", "known"), ZONE_CASES)
def test_hour_and_weekday_are_local_and_cyclical(
    zone: str | None, hour: float, weekday: int, known: float
) -> None:
    events: list[InboundEvent] = [Ev.page(0)]
    if zone is not None:
        events.append(Ev.zone(1, zone))
    now = datetime(2024, 5, 3, 16, 0, tzinfo=UTC)
    x = features(profile_of(events), None, now, CONFIG)
    assert x["tz_known"] == known
    assert x["hour_sin"] == pytest.approx(math.sin(2 * math.pi * hour / 24))
    assert x["hour_cos"] == pytest.approx(math.cos(2 * math.pi * hour / 24))
    assert x["weekday_sin"] == pytest.approx(math.sin(2 * math.pi * weekday / 7))
    assert x["weekday_cos"] == pytest.approx(math.cos(2 * math.pi * weekday / 7))


def test_midnight_and_just_before_are_neighbours() -> None:
    profile = profile_of([Ev.page(0)])
    before = features(profile, None, datetime(2024, 5, 3, 23, 59, tzinfo=UTC), CONFIG)
    after = features(profile, None, datetime(2024, 5, 4, 0, 0, tzinfo=UTC), CONFIG)
    assert abs(before["hour_sin"] - after["hour_sin"]) < 0.01
    assert abs(before["hour_cos"] - after["hour_cos"]) < 0.01


# --- the scoring event -------------------------------------------------------------


def test_the_scored_event_type_is_one_hot() -> None:
    view = Ev.view(0, "a", "20")
    x = features(profile_of([view]), view, at(0), CONFIG)
    hot = [name for name in (*EVENT_FEATURES.values(), "event_none") if x[name] == 1.0]
    assert hot == ["event_product_view"]


def test_scoring_outside_an_event_sets_event_none() -> None:
    x = features(profile_of([Ev.page(0)]), None, at(60), CONFIG)
    hot = [name for name in (*EVENT_FEATURES.values(), "event_none") if x[name] == 1.0]
    assert hot == ["event_none"]


def test_every_inbound_event_type_has_a_feature() -> None:
    assert {"order_completed", "email_click", "product_view", "customer_erased"} <= set(
        EVENT_FEATURES
    )
    assert len(EVENT_FEATURES) == 18


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        features(profile_of([Ev.page(0)]), None, datetime(2024, 5, 1), CONFIG)  # noqa: DTZ001


# --- invariants over generated profiles --------------------------------------------

minutes = st.floats(min_value=0, max_value=days(500), allow_nan=False)
prices = st.decimals(min_value=D(0), max_value=D("99999999999999.9999"), places=4)


@st.composite
def profiles(draw: st.DrawFn) -> tuple[Profile, InboundEvent]:
    kinds = st.sampled_from(["page", "view", "search", "add", "checkout", "order", "email", "zone"])
    events: list[InboundEvent] = []
    for _ in range(draw(st.integers(1, 25))):
        minute = draw(minutes)
        price = str(draw(prices))
        match draw(kinds):
            case "page":
                events.append(Ev.page(minute, draw(st.sampled_from(["s1", "s2", None]))))
            case "view":
                events.append(Ev.view(minute, draw(st.sampled_from("abc")), price))
            case "search":
                events.append(Ev.search(minute, draw(st.sampled_from(["x", "y"]))))
            case "add":
                events.append(Ev.add(minute, draw(st.sampled_from("ab")), 10_000, price))
            case "checkout":
                events.append(Ev.checkout(minute))
            case "order":
                events.append(Ev.order(minute, price))
            case "email":
                kind = draw(st.sampled_from([EmailSent, EmailOpen, EmailClick, EmailBounce]))
                extra = {"bounce_type": "soft"} if kind is EmailBounce else {}
                events.append(Ev.email(kind, minute, **extra))
            case _:
                zone = draw(st.sampled_from(["Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12"]))
                events.append(Ev.zone(minute, zone))
    return profile_of(events), events[-1]


@given(profiles(), st.floats(min_value=-days(30), max_value=days(5000)), st.booleans())
@settings(max_examples=150, deadline=None)
def test_features_are_deterministic_finite_and_bounded(
    drawn: tuple[Profile, InboundEvent], minute: float, with_event: bool
) -> None:
    profile, event = drawn
    now = at(minute)
    scored = event if with_event else None
    x = features(profile, scored, now, CONFIG)
    assert tuple(x) == FEATURE_NAMES
    for name, value in x.items():
        low, high = BOUNDS[name]
        assert isinstance(value, float)
        assert math.isfinite(value), name
        assert low <= value <= high, (name, value)
    assert features(profile, scored, now, CONFIG) == x
    restored = Profile.from_bytes(profile.to_bytes())
    assert features(restored, scored, now, CONFIG) == x
