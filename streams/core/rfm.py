"""RFM scores (recency, frequency, monetary; 1 to 5 each) and the segment they give.

Scores come from fixed edges, not quantiles of the customer base: a worker
sees one customer at a time and must score the same customer the same way
whatever else it has seen. A value at or below ``edges[i]`` (and above
``edges[i - 1]``) lands in bucket ``i``; recency is scored the other way
round (fewer days, higher score).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Final

from schemas.profiles import Segment

if TYPE_CHECKING:
    from streams.core.profile import Profile
    from streams.core.purchases import Purchases

__all__ = [
    "SEGMENT_GRID",
    "RfmConfig",
    "RfmScores",
    "Segment",
    "rfm_scores",
    "rfm_scores_of",
    "segment",
]

_DAY: Final = timedelta(days=1)


def _check_edges(name: str, edges: tuple[int, ...] | tuple[Decimal, ...]) -> None:
    steps: list[tuple[int | Decimal, int | Decimal]] = list(pairwise(edges))
    if len(edges) != 4:
        raise ValueError(f"{name} needs 4 edges (5 scores), got {len(edges)}")
    if any(low >= high for low, high in steps):
        raise ValueError(f"{name} edges must be strictly increasing, got {edges}")
    if edges[0] < 0:
        raise ValueError(f"{name} edges must not be negative")


@dataclass(frozen=True, slots=True)
class RfmConfig:
    """Score edges: days since the last order, order count, revenue total."""

    recency_days: tuple[int, ...] = (30, 90, 180, 365)
    """R is 5 up to 30 days since the last order, 4 up to 90 ... 1 beyond 365."""
    frequency_orders: tuple[int, ...] = (1, 2, 4, 8)
    """F is 1 for one order, 2 for two, 3 up to 4, 4 up to 8, 5 beyond."""
    monetary: tuple[Decimal, ...] = (Decimal(50), Decimal(150), Decimal(400), Decimal(1000))
    """M is 1 up to 50 of revenue, 2 up to 150 ... 5 beyond 1000."""

    def __post_init__(self) -> None:
        _check_edges("recency_days", self.recency_days)
        _check_edges("frequency_orders", self.frequency_orders)
        _check_edges("monetary", self.monetary)


@dataclass(frozen=True, slots=True)
class RfmScores:
    """Scores 1 (worst) to 5 (best); all 0 for a customer who never ordered."""

    r: int
    f: int
    m: int


_NEVER_ORDERED: Final = RfmScores(r=0, f=0, m=0)
"""The scores of most customers, built once (a frozen value: shared safely)."""


def rfm_scores(profile: Profile, as_of: datetime, config: RfmConfig) -> RfmScores:
    """Score the customer's recency, frequency and monetary value as of ``as_of``.

    Recency is whole days (24 hours) from the last order to ``as_of``, never
    below 0 (an ``as_of`` before the last order counts as 0 days).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.cart import OrderCompleted, OrderLine
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> line = OrderLine(product_id="sku-1", quantity=1, unit_price=Decimal("120"))
    >>> order = OrderCompleted(
    ...     event_id="e1", customer_id="c1", occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
    ...     order_id="o1", lines=(line,), total=Decimal("120"), currency="EUR",
    ... )
    >>> profile = apply(None, order, ProfileConfig()).profile
    >>> scores = rfm_scores(profile, datetime(2024, 6, 15, tzinfo=UTC), RfmConfig())
    >>> scores, segment(scores)
    (RfmScores(r=4, f=1, m=2), <Segment.promising: 'promising'>)

    """
    return rfm_scores_of(profile.purchases, as_of, config)


def rfm_scores_of(purchases: Purchases, as_of: datetime, config: RfmConfig) -> RfmScores:
    """Score from the purchases alone, all :func:`rfm_scores` reads of a profile.

    The reducer scores a profile before building it, from the purchases it
    is about to store.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("`as_of` must be timezone-aware")
    last = purchases.last_order_at
    if last is None:
        return _NEVER_ORDERED
    days = max(0, (as_of - last) // _DAY)
    return RfmScores(
        r=5 - bisect.bisect_left(config.recency_days, days),
        f=1 + bisect.bisect_left(config.frequency_orders, purchases.order_count),
        m=1 + bisect.bisect_left(config.monetary, purchases.revenue_total),
    )


_S = Segment

SEGMENT_GRID: Final[Mapping[int, tuple[Segment, Segment, Segment, Segment, Segment]]] = {
    # R    F = 1              F = 2                  F = 3                  F = 4        F = 5
    5: (_S.new_customer, _S.potential_loyalist, _S.potential_loyalist, _S.champions, _S.champions),
    4: (_S.promising, _S.potential_loyalist, _S.potential_loyalist, _S.loyal, _S.loyal),
    3: (_S.about_to_sleep, _S.about_to_sleep, _S.need_attention, _S.loyal, _S.loyal),
    2: (_S.hibernating, _S.hibernating, _S.at_risk, _S.at_risk, _S.cannot_lose),
    1: (_S.lost, _S.lost, _S.at_risk, _S.at_risk, _S.cannot_lose),
}
"""The segment of each (R, F) pair: ``SEGMENT_GRID[r][f - 1]``.

This is the conventional R x F segment map of RFM analysis (the one usually
written as a ``seg_map`` of regular expressions over "RF" score pairs, e.g.
``r"[1-2][1-2]": "hibernating"``, ``r"5[4-5]": "champions"``), with the
segment names of Putler's RFM segment table. One change: the map's
hibernating corner (R 1-2, F 1-2) is split so that R = 1 is ``lost``,
Putler's segment of the lowest recency. As in that map, M is scored but does
not choose the segment.
"""


def segment(scores: RfmScores) -> Segment:
    """Name the segment of a score triple; ``prospect`` when nothing was ever ordered."""
    if scores.f == 0:
        return Segment.prospect
    return SEGMENT_GRID[scores.r][scores.f - 1]
