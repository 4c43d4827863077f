"""The cold-start priors: bounded, monotone in intent, ordered on real profiles."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.features import BOUNDS, features
from online_models.prior import ENGAGEMENT_PRIOR, PURCHASE_PRIOR, Prior, PriorTerm
from schemas.cart import CartAdd, CheckoutStarted, OrderCompleted, OrderLine
from schemas.clickstream import PageView, ProductView
from schemas.codec import InboundEvent
from streams.core.profile import Profile
from streams.core.reducer import ProfileConfig, apply

pytestmark = pytest.mark.unit

PRIORS = [
    pytest.param(PURCHASE_PRIOR, id="purchase"),
    pytest.param(ENGAGEMENT_PRIOR, id="engagement"),
]
T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)

feature_dicts = st.dictionaries(
    st.sampled_from(sorted(BOUNDS)),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
)


@pytest.mark.parametrize("prior", PRIORS)
@given(x=feature_dicts)
@settings(max_examples=200, deadline=None)
def test_a_prior_is_a_probability_within_its_clip(prior: Prior, x: dict[str, float]) -> None:
    p = prior.probability(x)
    assert math.isfinite(p)
    assert 0.01 <= p <= 0.99


@pytest.mark.parametrize("prior", PRIORS)
@given(x=feature_dicts, step=st.floats(min_value=0, max_value=100), which=st.integers(0, 20))
@settings(max_examples=300, deadline=None)
def test_a_prior_moves_with_the_sign_of_each_weight(
    prior: Prior, x: dict[str, float], step: float, which: int
) -> None:
    term = prior.terms[which % len(prior.terms)]
    more = {**x, term.feature: x.get(term.feature, 0.0) + step}
    before, after = prior.probability(x), prior.probability(more)
    if term.weight > 0:
        assert after >= before
    else:
        assert after <= before


def test_non_finite_features_read_as_missing() -> None:
    assert PURCHASE_PRIOR.probability({"checkout_started": math.nan}) == PURCHASE_PRIOR.probability(
        {}
    )


def test_intent_orders_the_purchase_prior() -> None:
    ladder = [
        {"days_since_last_visit": 30.0},
        {"session_products": 1.0},
        {"session_products": 5.0, "session_searches": 2.0},
        {"session_products": 5.0, "has_cart": 1.0, "cart_lines": 1.0},
        {"session_products": 5.0, "has_cart": 1.0, "cart_lines": 3.0, "checkout_started": 1.0},
        {
            "session_products": 5.0,
            "has_cart": 1.0,
            "cart_lines": 3.0,
            "checkout_started": 1.0,
            "rfm_r": 5.0,
            "rfm_f": 5.0,
        },
    ]
    scores = [PURCHASE_PRIOR.probability(x) for x in ladder]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)
    assert scores[0] == 0.01
    assert 0.2 < scores[4] < 0.5  # a started checkout: a few times in ten


def test_engagement_prior_rises_with_clicks_and_falls_with_bounces() -> None:
    base = ENGAGEMENT_PRIOR.probability({})
    assert 0.02 < base < 0.03
    assert ENGAGEMENT_PRIOR.probability({"click_rate_30d": 0.5}) > base
    assert ENGAGEMENT_PRIOR.probability({"soft_bounce_streak": 3.0}) < base


def profile_of(events: list[InboundEvent]) -> Profile:
    state = None
    for event in events:
        state = apply(state, event, ProfileConfig()).profile
    assert isinstance(state, Profile)
    return state


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_on_real_profiles_a_checkout_outscores_a_glance() -> None:
    glance = PageView(
        event_id="e1", customer_id="c", occurred_at=at(0), session_id="s", url="https://s.e/"
    )
    view = ProductView(
        event_id="e2",
        customer_id="c",
        occurred_at=at(1),
        session_id="s",
        product_id="p",
        price=Decimal(30),
        currency="EUR",
    )
    add = CartAdd(
        event_id="e3",
        customer_id="c",
        occurred_at=at(2),
        session_id="s",
        cart_id="k",
        product_id="p",
        quantity=1,
        unit_price=Decimal(30),
        currency="EUR",
    )
    checkout = CheckoutStarted(
        event_id="e4", customer_id="c", occurred_at=at(3), session_id="s", cart_id="k"
    )
    past_order = OrderCompleted(
        event_id="e0",
        customer_id="c",
        occurred_at=at(-60 * 24 * 5),
        order_id="o0",
        lines=(OrderLine(product_id="q", quantity=1, unit_price=Decimal(80)),),
        total=Decimal(80),
        currency="EUR",
    )
    journeys: list[list[InboundEvent]] = [
        [glance],
        [glance, view],
        [glance, view, add],
        [glance, view, add, checkout],
        [past_order, glance, view, add, checkout],
    ]
    config = ProfileConfig()
    scores = [
        PURCHASE_PRIOR.probability(features(profile_of(j), j[-1], at(4), config)) for j in journeys
    ]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)


def test_bad_priors_are_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        Prior(intercept=0.0, terms=(), floor=0.5, ceiling=0.4)
    with pytest.raises(ValueError, match="cap"):
        PriorTerm("x", 1.0, 0.0)
