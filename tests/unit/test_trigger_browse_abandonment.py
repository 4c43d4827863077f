"""Browse abandonment, scenario by scenario: timed events in, browse triggers out.

Each row: the story, the events (in arrival order, times on 1 May 2024 UTC
unless a day is given), the customer's trigger history, and the expected
browse triggers as (time, products carried).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import pytest

from schemas.triggers import BrowsePayload, ViewedProduct
from streams.core.policy import PolicyConfig
from streams.core.triggers import browse_abandonment
from streams.core.triggers.base import Deadline, Score, TriggerConfig
from tests.unit.test_trigger_timeline import (
    BROWSE,
    CUSTOMER,
    OPEN,
    Timed,
    add,
    at,
    checkout,
    consent,
    history,
    of_type,
    order,
    page,
    profile_of,
    remove,
    run,
    scored,
    view,
)

pytestmark = pytest.mark.unit


class Case(NamedTuple):
    story: str
    events: list[Timed]
    expected: list[tuple[datetime, tuple[str, ...]]]
    history: dict[str, datetime] | None = None
    config: TriggerConfig = TriggerConfig()


SKU = ("sku-1",)
CASES = [
    Case(
        "views a product at 10:00, no cart by 11:00 -> one browse trigger carrying the product",
        [view("10:00")],
        [(at("11:00"), SKU)],
    ),
    Case("adds to cart at 10:30 -> cancelled", [view("10:00"), add("10:30")], []),
    Case(
        "removes from the cart at 10:30 -> cancelled (the cart rule's)",
        [add("09:00", session="s0"), view("10:00"), remove("10:30")],
        [],
    ),
    Case("starts checkout at 10:30 -> cancelled", [view("10:00"), checkout("10:30")], []),
    Case("orders at 10:30 -> cancelled", [view("10:00"), order("10:30")], []),
    Case(
        "adds to cart exactly at 11:00 -> too late, the deadline wins",
        [view("10:00"), add("11:00")],
        [(at("11:00"), SKU)],
    ),
    Case(
        "adds to cart at 11:05, after the trigger -> the trigger stands",
        [view("10:00"), add("11:05")],
        [(at("11:00"), SKU)],
    ),
    Case(
        "has a cart from an earlier session -> not a cancel",
        [add("10:00", day=-1, session="s0"), view("10:00")],
        [(at("11:00"), SKU)],
    ),
    Case("ordered 5 days ago -> no trigger", [order("10:00", day=-5), view("10:00")], []),
    Case(
        "last order exactly 10 days before the deadline -> trigger",
        [order("11:00", day=-10), view("10:00")],
        [(at("11:00"), SKU)],
    ),
    Case(
        "browse-triggered 10 days ago -> not again",
        [view("10:00")],
        [],
        {"browse_abandonment": at("11:00", day=-10)},
    ),
    Case(
        "browse-triggered exactly 14 days before -> again",
        [view("10:00")],
        [(at("11:00"), SKU)],
        {"browse_abandonment": at("11:00", day=-14)},
    ),
    Case(
        "cart-triggered yesterday -> a browse trigger is another type",
        [view("10:00")],
        [(at("11:00"), SKU)],
        {"cart_abandonment": at("11:00", day=-1)},
    ),
    Case(
        "abandons on day 0 and again on day 3 -> only the first (re-entry 14 days)",
        [view("10:00"), view("10:00", day=3, session="s2")],
        [(at("11:00"), SKU)],
    ),
    Case(
        "views at 10:00 and 10:40 -> one trigger at 11:40, most recent first",
        [view("10:00", "sku-1"), view("10:40", "sku-2")],
        [(at("11:40"), ("sku-2", "sku-1"))],
    ),
    Case(
        "views the same product twice -> carried once",
        [view("10:00", "sku-1"), view("10:10", "sku-2"), view("10:20", "sku-1")],
        [(at("11:20"), ("sku-1", "sku-2"))],
    ),
    Case(
        "views seven products -> the five most recent",
        [view(f"10:0{n}", f"sku-{n}") for n in range(7)],
        [(at("11:06"), ("sku-6", "sku-5", "sku-4", "sku-3", "sku-2"))],
    ),
    Case(
        "views only products under the minimum price -> nothing",
        [view("10:00", price="9.99")],
        [],
        config=TriggerConfig(browse_min_price=Decimal(10)),
    ),
    Case(
        "a cheap view after a dear one -> the cheap one neither delays nor appears",
        [view("10:00", "dear", price="50"), view("10:30", "cheap", price="5")],
        [(at("11:00"), ("dear",))],
        config=TriggerConfig(browse_min_price=Decimal(10)),
    ),
    Case(
        "comes back in a new session at 10:45 -> only the new session's trigger",
        [view("10:00", "sku-1"), view("10:45", "sku-2", session="s2")],
        [(at("11:45"), ("sku-2",))],
    ),
    Case(
        "a page view at 10:50 -> no product view, the 11:00 deadline holds",
        [view("10:00"), page("10:50")],
        [(at("11:00"), SKU)],
    ),
    Case(
        "no session ids: one by inactivity gap -> keyed by its start, triggers",
        [view("10:00", session=None)],
        [(at("11:00"), SKU)],
    ),
    Case(
        "a 30-minute wait -> trigger at 10:30",
        [view("10:00")],
        [(at("10:30"), SKU)],
        config=TriggerConfig(browse_wait=timedelta(minutes=30)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.story for case in CASES])
def test_browse_scenarios(case: Case) -> None:
    states = history(**case.history) if case.history else None
    timeline = run(case.events, config=case.config, states=states)
    got = [
        (f.candidate.occurred_at, tuple(p.product_id for p in _products(f.candidate.payload)))
        for f in of_type(timeline, BROWSE)
    ]
    assert got == case.expected


# One decision per session, through the policy: a later view in the same
# session sets a new deadline, but a session already decided for good offers
# nothing more. Rows: (offered at, session, outcome, attempt).
class DecisionCase(NamedTuple):
    story: str
    events: list[Timed]
    expected: list[tuple[datetime, str, str, int]]
    policy: PolicyConfig = OPEN


DECISIONS = [
    DecisionCase(
        "no consent: suppressed at 11:00, views again at 11:30 -> no second decision",
        [view("10:00"), view("11:30", "sku-2")],
        [(at("11:00"), "s1", "suppressed", 0)],
    ),
    DecisionCase(
        "no consent: a new session the next day -> its own single decision",
        [view("10:00"), view("11:30"), view("10:00", day=1, session="s2")],
        [(at("11:00"), "s1", "suppressed", 0), (at("11:00", day=1), "s2", "suppressed", 0)],
    ),
    DecisionCase(
        "capped by a discount offer, the cap frees too late -> views later offer nothing",
        [consent(), scored(page("10:00"), 0.9), view("10:05"), view("11:30", "sku-2")],
        [(at("11:05"), "s1", "capped", 0)],
        PolicyConfig(holdout_share=0, cap_window=timedelta(hours=48)),
    ),
    DecisionCase(
        "capped by a discount offer -> offered once more when the cap frees, sent",
        [consent(), scored(page("10:00"), 0.9), view("10:05")],
        [(at("11:05"), "s1", "capped", 0), (at("02:00", day=1), "s1", "sent", 1)],
    ),
]


@pytest.mark.parametrize("case", DECISIONS, ids=[case.story for case in DECISIONS])
def test_one_decision_per_session(case: DecisionCase) -> None:
    timeline = run(case.events, policy=case.policy)
    got = [
        (f.candidate.offered_at, f.candidate.key, f.decision.outcome.value, f.candidate.attempt)
        for f in of_type(timeline, BROWSE)
        if f.decision is not None
    ]
    assert got == case.expected


REASONS = [
    (
        "one product",
        [view("10:00", price="89")],
        TriggerConfig(),
        "Viewed 1 product (latest: sku-1, 89.00 EUR) and left 60 min ago without adding to cart",
    ),
    (
        "seven products: all counted, the latest named",
        [view(f"10:0{n}", f"sku-{n}", price=f"1{n}.5") for n in range(7)],
        TriggerConfig(browse_wait=timedelta(minutes=30)),
        "Viewed 7 products (latest: sku-6, 16.50 EUR) and left 30 min ago without adding to cart",
    ),
    (
        "cheap views are not counted",
        [view("10:00", "dear", price="50"), view("10:10", "cheap", price="5")],
        TriggerConfig(browse_min_price=Decimal(10)),
        "Viewed 1 product (latest: dear, 50.00 EUR) and left 60 min ago without adding to cart",
    ),
]


@pytest.mark.parametrize(
    ("events", "config", "expected"), [r[1:] for r in REASONS], ids=[r[0] for r in REASONS]
)
def test_the_reason_counts_the_views_and_names_the_latest(
    events: list[Timed], config: TriggerConfig, expected: str
) -> None:
    (fired,) = of_type(run(events, config=config), BROWSE)
    assert fired.candidate.reason == expected


def _products(payload: object) -> tuple[ViewedProduct, ...]:
    assert isinstance(payload, BrowsePayload)
    return payload.products


def test_the_trigger_carries_price_category_and_view_time_and_the_tier() -> None:
    events = [(view("10:00", "sku-1", price="19.99", category="hats"), 0.55)]
    (fired,) = of_type(run(events), BROWSE)
    candidate = fired.candidate
    assert _products(candidate.payload) == (
        ViewedProduct(
            product_id="sku-1",
            price=Decimal("19.99"),
            currency="EUR",
            category="hats",
            viewed_at=at("10:00"),
        ),
    )
    assert (candidate.key, candidate.tier.value, candidate.reoffer) == ("s1", "discount", True)
    assert candidate.score == Score(0.55, "m1")


# --- the rule's entry points, called directly ----------------------------------


def _deadline(due: datetime, key: str = "s1", attempt: int = 0) -> Deadline:
    return Deadline(customer_id=CUSTOMER, rule=BROWSE, key=key, due_at=due, attempt=attempt)


CONFIG = TriggerConfig()


def test_each_view_pushes_the_deadline_back() -> None:
    first, second = view("10:00"), view("10:20", "sku-2")
    profile = profile_of(first, second)
    result = browse_abandonment.on_event(profile, second, None, at("10:20"), CONFIG)
    assert result.deadlines_set == (_deadline(at("11:20")),)


def test_a_late_view_sets_no_deadline_already_passed() -> None:
    late = view("10:00")
    result = browse_abandonment.on_event(profile_of(late), late, None, at("11:00"), CONFIG)
    assert result.deadlines_set == ()


def test_a_deadline_called_early_stays_pending() -> None:
    profile = profile_of(view("10:00"))
    result = browse_abandonment.on_deadline(
        profile, _deadline(at("11:00")), None, at("10:59"), CONFIG
    )
    assert result.deadlines_set == (_deadline(at("11:00")),)
    assert result.candidates == ()


def test_a_superseded_deadline_gives_nothing() -> None:
    profile = profile_of(view("10:00"), view("10:30", "sku-2"))
    stale = browse_abandonment.on_deadline(
        profile, _deadline(at("11:00")), None, at("11:00"), CONFIG
    )
    assert stale.candidates == ()


def test_a_deadline_of_another_session_gives_nothing() -> None:
    profile = profile_of(view("10:00"))
    result = browse_abandonment.on_deadline(
        profile, _deadline(at("11:00"), key="s0"), None, at("11:00"), CONFIG
    )
    assert result.candidates == ()


def test_a_re_offer_keeps_the_occurrence_and_carries_the_attempt() -> None:
    profile = profile_of(view("10:00"))
    retry = _deadline(at("02:00", day=1), attempt=1)
    (candidate,) = browse_abandonment.on_deadline(
        profile, retry, None, at("02:00", day=1), CONFIG
    ).candidates
    assert (candidate.occurred_at, candidate.offered_at, candidate.attempt) == (
        at("11:00"),
        at("02:00", day=1),
        1,
    )
