"""Purchase history: what the buy-till-you-die summary and RFM are computed from.

Everything kept here is order-independent: order ids (sorted), first and last
order times (min and max), the exact revenue and the per-day totals (sums of
``Decimal``), so a replay in any order gives the same bytes. Order ids are
kept for ever to drop a redelivered order whatever its event id; that is one
short string per order, the price of exact revenue.

Calendar days are those of the business time zone given when the order is
folded in; :func:`purchase_summary` must be given the same zone. Amounts are
added as they come, whatever their currency: Nudge assumes a shop reports in
one currency (no exchange rates in the core).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from pydantic import Field

from schemas.cart import OrderCompleted
from schemas.common import UtcDatetime
from streams.core.frozen import FrozenModel
from streams.core.money import MONEY, ZERO, quantize4

if TYPE_CHECKING:
    from streams.core.profile import Profile

__all__ = ["PurchaseSummary", "Purchases", "fold_order", "purchase_summary"]


class Purchases(FrozenModel):
    """A customer's orders, reduced to what the summaries need.

    ``purchase_days`` maps an ISO date (``"2024-05-01"``) of the business
    time zone to the total of that day's orders; its keys are kept sorted.
    """

    order_ids: tuple[str, ...] = ()
    first_order_at: UtcDatetime | None = None
    last_order_at: UtcDatetime | None = None
    revenue_total: Decimal = ZERO
    purchase_days: dict[str, Decimal] = Field(default_factory=dict)

    @property
    def order_count(self) -> int:
        """Distinct orders (by ``order_id``)."""
        return len(self.order_ids)

    def has_order(self, order_id: str) -> bool:
        """Whether this order was already counted."""
        at = bisect.bisect_left(self.order_ids, order_id)
        return at < len(self.order_ids) and self.order_ids[at] == order_id


def fold_order(purchases: Purchases, order: OrderCompleted, business_tz: tzinfo) -> Purchases:
    """Count one order not seen before (the caller checks :meth:`Purchases.has_order`)."""
    at = order.occurred_at
    ids = purchases.order_ids
    where = bisect.bisect_left(ids, order.order_id)
    day = at.astimezone(business_tz).date().isoformat()
    days = dict(purchases.purchase_days)
    days[day] = MONEY.add(days.get(day, ZERO), order.total)
    first, last = purchases.first_order_at, purchases.last_order_at
    return purchases.updated(
        {
            "order_ids": (*ids[:where], order.order_id, *ids[where:]),
            "first_order_at": at if first is None else min(first, at),
            "last_order_at": at if last is None else max(last, at),
            "revenue_total": MONEY.add(purchases.revenue_total, order.total),
            "purchase_days": days if day in purchases.purchase_days else dict(sorted(days.items())),
        }
    )


@dataclass(frozen=True, slots=True)
class PurchaseSummary:
    """The frequency/recency/T/monetary summary of buy-till-you-die models.

    The definitions of ``lifetimes``' ``summary_data_from_transaction_data``
    with days as the period: ``frequency`` is the number of purchase days
    after the first (repeat purchase days), ``recency`` the days from the
    first to the last purchase day, ``T`` the days from the first purchase
    day to the observation day, ``monetary_value`` the mean day total over
    the repeat purchase days (4 decimals, half to even; 0 without repeats).
    """

    frequency: int
    recency: int
    T: int  # upper case: the name every BTYD paper and library uses
    monetary_value: Decimal


_NO_PURCHASES: Final = PurchaseSummary(frequency=0, recency=0, T=0, monetary_value=quantize4(ZERO))
"""The summary of most customers, built once (a frozen value: shared safely)."""


def purchase_summary(profile: Profile, as_of: datetime, business_tz: tzinfo) -> PurchaseSummary:
    """Summarize the customer's purchases as of ``as_of`` for BTYD models.

    Parameters
    ----------
    profile
        The customer's profile.
    as_of
        The observation time (aware); its date in ``business_tz`` is the
        observation day. An ``as_of`` before the last purchase day counts as
        that day, so ``T >= recency >= 0`` always holds.
    business_tz
        The zone the profile's purchase days were counted in.

    Returns
    -------
    PurchaseSummary
        All zeros for a customer who never ordered (tell them apart with
        ``profile.purchases.order_count``). Any order of arrival of the same
        orders gives the same summary: the day totals are exact sums.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.cart import OrderCompleted, OrderLine
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> def order(n: int, day: int, total: str) -> OrderCompleted:
    ...     line = OrderLine(product_id="sku-1", quantity=1, unit_price=Decimal(total))
    ...     at = datetime(2024, 5, day, 9, tzinfo=UTC)
    ...     return OrderCompleted(
    ...         event_id=f"e{n}", customer_id="c1", occurred_at=at, order_id=f"o{n}",
    ...         lines=(line,), total=Decimal(total), currency="EUR",
    ...     )
    >>> config, profile = ProfileConfig(), None
    >>> for n, (day, total) in enumerate([(1, "10"), (3, "20"), (3, "5"), (8, "40")]):
    ...     profile = apply(profile, order(n, day, total), config).profile
    >>> purchase_summary(profile, datetime(2024, 5, 31, tzinfo=UTC), UTC)
    PurchaseSummary(frequency=2, recency=7, T=30, monetary_value=Decimal('32.5000'))

    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("`as_of` must be timezone-aware")
    days = profile.purchases.purchase_days
    if not days:
        return _NO_PURCHASES
    keys = sorted(days)
    first, last = date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    observed = max(as_of.astimezone(business_tz).date(), last)
    repeat = keys[1:]
    monetary = ZERO
    if repeat:
        total = ZERO
        for key in repeat:
            total = MONEY.add(total, days[key])
        monetary = MONEY.divide(total, Decimal(len(repeat)))
    return PurchaseSummary(
        frequency=len(repeat),
        recency=(last - first).days,
        T=(observed - first).days,
        monetary_value=quantize4(monetary),
    )
