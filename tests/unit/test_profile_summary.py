"""Purchase summaries and RFM segments against cases worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.cart import OrderCompleted, OrderLine
from schemas.clickstream import PageView
from streams.core.profile import Profile, purchase_summary
from streams.core.purchases import PurchaseSummary
from streams.core.reducer import ProfileConfig, apply
from streams.core.rfm import SEGMENT_GRID, RfmConfig, RfmScores, Segment, rfm_scores, segment

pytestmark = pytest.mark.unit

D = Decimal
NEW_YORK = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")


def utc(text: str) -> datetime:
    """``"2024-05-01 15:00"`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def profile_with(orders: list[tuple[str, str]], zone: ZoneInfo = UTC_ZONE) -> Profile:
    """A profile from ``(utc time, total)`` orders, days counted in ``zone``."""
    config = ProfileConfig(business_tz=zone)
    state = apply(
        None,
        PageView(
            event_id="v", customer_id="c", occurred_at=utc("2024-01-01 00:00"), url="https://s.e/"
        ),
        config,
    ).profile
    for n, (when, total) in enumerate(orders):
        line = OrderLine(product_id="sku", quantity=1, unit_price=D(total))
        event = OrderCompleted(
            event_id=f"e{n}",
            customer_id="c",
            occurred_at=utc(when),
            order_id=f"o{n}",
            lines=(line,),
            total=D(total),
            currency="USD",
        )
        state = apply(state, event, config).profile
    assert isinstance(state, Profile)
    return state


SUMMARY_CASES = [
    pytest.param([], "2024-06-01 00:00", UTC_ZONE, (0, 0, 0, "0"), id="no-orders-all-zero"),
    pytest.param(
        [("2024-05-01 10:00", "40")],
        "2024-05-31 10:00",
        UTC_ZONE,
        (0, 0, 30, "0"),
        id="one-order-no-repeat",
    ),
    pytest.param(
        [
            ("2024-05-01 09:00", "10"),
            ("2024-05-03 09:00", "20"),
            ("2024-05-03 18:00", "5"),
            ("2024-05-08 09:00", "40"),
        ],
        "2024-05-31 00:00",
        UTC_ZONE,
        (2, 7, 30, "32.5"),  # repeat days: 3 May (20 + 5) and 8 May (40)
        id="same-day-orders-summed",
    ),
    pytest.param(
        [("2024-05-01 09:00", "1000"), ("2024-05-02 09:00", "10")],
        "2024-05-02 09:00",
        UTC_ZONE,
        (1, 1, 1, "10"),
        id="first-day-excluded-from-monetary",
    ),
    pytest.param(
        # 02:00 UTC on 2 May is 22:00 on 1 May in New York: the same day as the first order.
        [("2024-05-01 15:00", "10"), ("2024-05-02 02:00", "30")],
        "2024-05-10 12:00",
        NEW_YORK,
        (0, 0, 9, "0"),
        id="business-zone-moves-an-order-back-a-day",
    ),
    pytest.param(
        [("2024-05-01 15:00", "10"), ("2024-05-02 02:00", "30")],
        "2024-05-10 12:00",
        UTC_ZONE,
        (1, 1, 9, "30"),
        id="same-orders-in-utc-are-two-days",
    ),
    pytest.param(
        # as_of 02:00 UTC on 1 June is still 31 May in New York.
        [("2024-05-01 15:00", "10")],
        "2024-06-01 02:00",
        NEW_YORK,
        (0, 0, 30, "0"),
        id="as-of-converted-to-the-business-zone",
    ),
    pytest.param(
        [("2024-05-01 09:00", "10"), ("2024-05-11 09:00", "20")],
        "2025-05-01 09:00",
        UTC_ZONE,
        (1, 10, 365, "20"),
        id="T-as-of-a-later-date",
    ),
    pytest.param(
        [("2024-05-01 09:00", "10"), ("2024-05-11 09:00", "20")],
        "2024-05-05 09:00",
        UTC_ZONE,
        (1, 10, 10, "20"),
        id="as-of-before-the-last-purchase-counts-as-that-day",
    ),
    pytest.param(
        [("2024-05-01 09:00", "1"), ("2024-05-02 09:00", "10.0001"), ("2024-05-03 09:00", "10")],
        "2024-05-03 09:00",
        UTC_ZONE,
        (2, 2, 2, "10.0000"),  # mean 10.00005: half to even rounds down
        id="monetary-half-even-down",
    ),
    pytest.param(
        [("2024-05-01 09:00", "1"), ("2024-05-02 09:00", "10.0003"), ("2024-05-03 09:00", "10")],
        "2024-05-03 09:00",
        UTC_ZONE,
        (2, 2, 2, "10.0002"),  # mean 10.00015: half to even rounds up
        id="monetary-half-even-up",
    ),
    pytest.param(
        [("2024-05-01 09:00", "1"), *((f"2024-05-0{d} 09:00", "0.01") for d in (2, 3, 4))],
        "2024-05-04 09:00",
        UTC_ZONE,
        (3, 3, 3, "0.0100"),
        id="monetary-mean-of-day-totals",
    ),
]


@pytest.mark.parametrize(("orders", "as_of", "zone", "expected"), SUMMARY_CASES)
def test_purchase_summary(
    orders: list[tuple[str, str]], as_of: str, zone: ZoneInfo, expected: tuple[Any, ...]
) -> None:
    frequency, recency, t, monetary = expected
    summary = purchase_summary(profile_with(orders, zone), utc(as_of), zone)
    assert summary == PurchaseSummary(frequency, recency, t, D(monetary))
    assert summary.monetary_value.as_tuple().exponent == -4  # always 4 places


def test_purchase_summary_needs_an_aware_as_of() -> None:
    with pytest.raises(ValueError, match="aware"):
        purchase_summary(profile_with([]), datetime(2024, 5, 1), UTC)  # noqa: DTZ001


def test_purchase_days_and_revenue_are_exact() -> None:
    profile = profile_with(
        [("2024-05-01 09:00", "0.1"), ("2024-05-01 10:00", "0.2"), ("2024-05-02 09:00", "0.3")]
    )
    assert profile.purchases.purchase_days == {"2024-05-01": D("0.3"), "2024-05-02": D("0.3")}
    assert profile.purchases.revenue_total == D("0.6")


# --- RFM ---------------------------------------------------------------------------

AS_OF = utc("2025-01-01 00:00")

RFM_CASES = [
    # (days since the last order, order count, revenue) -> (r, f, m)
    pytest.param(0, 1, "50", (5, 1, 1), id="edges-are-inclusive-low"),
    pytest.param(30, 2, "50.01", (5, 2, 2), id="30-days-is-still-r5"),
    pytest.param(31, 3, "150", (4, 3, 2), id="31-days-is-r4"),
    pytest.param(90, 4, "400", (4, 3, 3), id="90-days-r4-4-orders-f3"),
    pytest.param(180, 5, "400.01", (3, 4, 4), id="180-days-r3"),
    pytest.param(365, 8, "1000", (2, 4, 4), id="365-days-r2"),
    pytest.param(366, 9, "1000.01", (1, 5, 5), id="beyond-every-edge"),
]


def profile_for(days: int, orders: int, revenue: str) -> Profile:
    last = AS_OF - timedelta(days=days)
    amounts = [D(revenue)] + [D(0)] * (orders - 1)
    times = [last - timedelta(minutes=n) for n in range(orders)]
    return profile_with(
        [(f"{t:%Y-%m-%d %H:%M}", str(a)) for t, a in zip(times, amounts, strict=True)]
    )


@pytest.mark.parametrize(("days", "orders", "revenue", "expected"), RFM_CASES)
def test_rfm_scores(days: int, orders: int, revenue: str, expected: tuple[int, int, int]) -> None:
    profile = profile_for(days, orders, revenue)
    assert profile.purchases.revenue_total == D(revenue)
    assert rfm_scores(profile, AS_OF, RfmConfig()) == RfmScores(*expected)


def test_rfm_of_a_customer_who_never_ordered_is_zero_and_prospect() -> None:
    scores = rfm_scores(profile_with([]), AS_OF, RfmConfig())
    assert scores == RfmScores(0, 0, 0)
    assert segment(scores) is Segment.prospect


def test_recency_is_whole_days_and_never_negative() -> None:
    profile = profile_with([("2025-01-01 00:00", "10")])
    just_under = utc("2025-01-31 23:59")  # 30 days 23:59 -> 30 whole days -> R5
    assert rfm_scores(profile, just_under, RfmConfig()).r == 5
    assert rfm_scores(profile, utc("2024-12-01 00:00"), RfmConfig()).r == 5


def test_rfm_edges_are_configurable() -> None:
    config = RfmConfig(recency_days=(1, 2, 3, 4), frequency_orders=(10, 20, 30, 40))
    scores = rfm_scores(profile_for(2, 1, "10"), AS_OF, config)
    assert scores == RfmScores(4, 1, 1)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"recency_days": (30, 90, 180)}, id="too-few"),
        pytest.param({"frequency_orders": (1, 2, 2, 8)}, id="not-increasing"),
        pytest.param({"monetary": (D(-1), D(1), D(2), D(3))}, id="negative"),
    ],
)
def test_rfm_config_refuses_bad_edges(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="edges"):
        RfmConfig(**overrides)


SEGMENT_CASES = [
    # (r, f) -> segment; m never changes the segment.
    pytest.param(5, 5, Segment.champions, id="R5F5-champions"),
    pytest.param(5, 4, Segment.champions, id="R5F4-champions"),
    pytest.param(4, 5, Segment.loyal, id="R4F5-loyal"),
    pytest.param(3, 4, Segment.loyal, id="R3F4-loyal"),
    pytest.param(5, 2, Segment.potential_loyalist, id="R5F2-potential-loyalist"),
    pytest.param(4, 3, Segment.potential_loyalist, id="R4F3-potential-loyalist"),
    pytest.param(5, 1, Segment.new_customer, id="R5F1-new-customer"),
    pytest.param(4, 1, Segment.promising, id="R4F1-promising"),
    pytest.param(3, 3, Segment.need_attention, id="R3F3-need-attention"),
    pytest.param(3, 1, Segment.about_to_sleep, id="R3F1-about-to-sleep"),
    pytest.param(3, 2, Segment.about_to_sleep, id="R3F2-about-to-sleep"),
    pytest.param(2, 3, Segment.at_risk, id="R2F3-at-risk"),
    pytest.param(1, 4, Segment.at_risk, id="R1F4-at-risk"),
    pytest.param(2, 5, Segment.cannot_lose, id="R2F5-cannot-lose"),
    pytest.param(1, 5, Segment.cannot_lose, id="R1F5-cannot-lose"),
    pytest.param(2, 2, Segment.hibernating, id="R2F2-hibernating"),
    pytest.param(2, 1, Segment.hibernating, id="R2F1-hibernating"),
    pytest.param(1, 2, Segment.lost, id="R1F2-lost"),
    pytest.param(1, 1, Segment.lost, id="R1F1-lost"),
]


@pytest.mark.parametrize(("r", "f", "expected"), SEGMENT_CASES)
def test_segment(r: int, f: int, expected: Segment) -> None:
    assert {segment(RfmScores(r, f, m)) for m in range(1, 6)} == {expected}


def test_the_grid_covers_every_score_pair_and_every_segment() -> None:
    assert sorted(SEGMENT_GRID) == [1, 2, 3, 4, 5]
    cells = {cell for row in SEGMENT_GRID.values() for cell in row}
    assert cells == set(Segment) - {Segment.prospect}
