"""Features: one pure function from a customer's profile to what the models see.

:func:`features` serves learning and scoring alike, so a model learns on
exactly the features it is later scored on. It reads the profile (and the
type of the event being scored) as of ``now``; it never reads a clock. Pass
the profile *after* the event was applied to it, as the shell stores it.

Every value is a finite float inside the bounds listed in :data:`BOUNDS`, and
every call returns the same keys in the same order (:data:`FEATURE_NAMES`),
whatever the shape of the profile: an absent part (no order, no session, no
cart, no email) reads as zeros plus a ``has_*`` flag, never as a sentinel
such as ``-1``. Durations measured from a time later than ``now`` (a profile
that already saw a later event) count as 0. Counts and amounts are
``log1p`` of a capped value, because a linear model weighs a heavy tail
badly; amounts are summed as they come, whatever their currency (the core
assumes one shop currency).

======================================  =====================================================
feature                                 definition (cap)
======================================  =====================================================
``rfm_r``, ``rfm_f``, ``rfm_m``         RFM scores as of ``now``, 1-5; 0 when never ordered
``has_ordered``                         1 when the customer ever ordered
``orders_log``                          log1p(order count), count capped at 1,000
``revenue_log``                         log1p(revenue total), capped at 1,000,000
``btyd_frequency_log``                  log1p(repeat purchase days), capped at 1,000
``btyd_recency_days``                   days from first to last purchase day, capped at 3,650
``btyd_t_days``                         days from first purchase day to ``now``, capped at 3,650
``btyd_monetary_log``                   log1p(mean repeat-day total), capped at 1,000,000
``days_since_last_order``               days, capped at 365; 365 when never ordered
``has_session``                         1 when a browsing session was ever seen
``days_since_last_visit``               days since the session's last activity, capped at 365;
                                        365 without a session
``session_products``                    products viewed in the session (capped at 50)
``session_categories``                  categories viewed in the session (capped at 50)
``session_searches``                    distinct searches in the session (capped at 50)
``session_dwell_minutes``               ``now`` minus the session start, capped at 240
``session_idle_minutes``                ``now`` minus the session's last activity, capped at 240
``viewed_price_mean_log``               log1p(mean price of the session's products), capped
``viewed_price_max_log``                log1p(max price of the session's products), capped
``has_cart``                            1 when a cart is open
``cart_value_log``                      log1p(cart value), capped at 1,000,000
``cart_lines``                          lines in the open cart, capped at 100
``cart_age_minutes``                    minutes since the cart last changed, capped at 10,080
                                        (the cart keeps no creation time)
``checkout_started``                    1 when checkout was started on the open cart
``{open,click}_rate_{7d,30d}``          decayed open and click rates, capped at 5
``emails_sent_log``                     log1p(emails sent), capped at 100,000
``soft_bounce_streak``                  current soft-bounce streak, capped at 10
``tz_known``                            1 when the customer's time zone is known
``hour_sin``, ``hour_cos``              local time of day of ``now`` on the unit circle
``weekday_sin``, ``weekday_cos``        local weekday of ``now`` (Monday = 0) on the unit circle
``event_<type>``                        1 for the type of the event scored, 0 for the others
``event_none``                          1 when scoring outside an event (a deadline)
======================================  =====================================================

Local time is that of the customer's time zone, UTC when it is unknown (or
missing from the installed time zone database).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.codec import EVENT_TYPES, InboundEvent
from streams.core.engagement import engagement_rates
from streams.core.profile import Profile
from streams.core.purchases import purchase_summary
from streams.core.reducer import ProfileConfig
from streams.core.rfm import rfm_scores

__all__ = ["BOUNDS", "EVENT_FEATURES", "FEATURE_NAMES", "features"]

_MAX_DAYS: Final = 365.0
_MAX_HISTORY_DAYS: Final = 3650.0
_MAX_SESSION_MINUTES: Final = 240.0
_MAX_CART_MINUTES: Final = 10080.0
_MAX_AMOUNT: Final = 1_000_000.0
_MAX_ORDERS: Final = 1000.0
_MAX_SESSION_ITEMS: Final = 50.0
_MAX_CART_LINES: Final = 100.0
_MAX_RATE: Final = 5.0
_MAX_SENT: Final = 100_000.0
_MAX_STREAK: Final = 10.0
_LOG_AMOUNT: Final = math.log1p(_MAX_AMOUNT)

EVENT_FEATURES: Final[Mapping[str, str]] = {
    kind: f"event_{kind}" for kind in sorted({t for types in EVENT_TYPES.values() for t in types})
}
"""The one-hot feature of each inbound event type (``event_type`` -> feature name)."""

BOUNDS: Final[Mapping[str, tuple[float, float]]] = {
    "rfm_r": (0.0, 5.0),
    "rfm_f": (0.0, 5.0),
    "rfm_m": (0.0, 5.0),
    "has_ordered": (0.0, 1.0),
    "orders_log": (0.0, math.log1p(_MAX_ORDERS)),
    "revenue_log": (0.0, _LOG_AMOUNT),
    "btyd_frequency_log": (0.0, math.log1p(_MAX_ORDERS)),
    "btyd_recency_days": (0.0, _MAX_HISTORY_DAYS),
    "btyd_t_days": (0.0, _MAX_HISTORY_DAYS),
    "btyd_monetary_log": (0.0, _LOG_AMOUNT),
    "days_since_last_order": (0.0, _MAX_DAYS),
    "has_session": (0.0, 1.0),
    "days_since_last_visit": (0.0, _MAX_DAYS),
    "session_products": (0.0, _MAX_SESSION_ITEMS),
    "session_categories": (0.0, _MAX_SESSION_ITEMS),
    "session_searches": (0.0, _MAX_SESSION_ITEMS),
    "session_dwell_minutes": (0.0, _MAX_SESSION_MINUTES),
    "session_idle_minutes": (0.0, _MAX_SESSION_MINUTES),
    "viewed_price_mean_log": (0.0, _LOG_AMOUNT),
    "viewed_price_max_log": (0.0, _LOG_AMOUNT),
    "has_cart": (0.0, 1.0),
    "cart_value_log": (0.0, _LOG_AMOUNT),
    "cart_lines": (0.0, _MAX_CART_LINES),
    "cart_age_minutes": (0.0, _MAX_CART_MINUTES),
    "checkout_started": (0.0, 1.0),
    "open_rate_7d": (0.0, _MAX_RATE),
    "click_rate_7d": (0.0, _MAX_RATE),
    "open_rate_30d": (0.0, _MAX_RATE),
    "click_rate_30d": (0.0, _MAX_RATE),
    "emails_sent_log": (0.0, math.log1p(_MAX_SENT)),
    "soft_bounce_streak": (0.0, _MAX_STREAK),
    "tz_known": (0.0, 1.0),
    "hour_sin": (-1.0, 1.0),
    "hour_cos": (-1.0, 1.0),
    "weekday_sin": (-1.0, 1.0),
    "weekday_cos": (-1.0, 1.0),
    **dict.fromkeys(EVENT_FEATURES.values(), (0.0, 1.0)),
    "event_none": (0.0, 1.0),
}
"""The closed interval every feature stays in, by name."""

FEATURE_NAMES: Final[tuple[str, ...]] = tuple(BOUNDS)
"""Every feature :func:`features` returns, in the order it returns them."""

_DAY_S: Final = 86400.0
_TAU: Final = 2.0 * math.pi


def _clip(value: float, high: float) -> float:
    # NaN fails both comparisons and would slip through min/max: map it to 0.
    if not value >= 0.0:
        return 0.0
    return min(value, high)


def _log_amount(value: Decimal | float) -> float:
    return math.log1p(_clip(float(value), _MAX_AMOUNT))


def _days(now: datetime, then: datetime | None, cap: float) -> float:
    if then is None:
        return cap
    return _clip((now - then).total_seconds() / _DAY_S, cap)


def _minutes(now: datetime, then: datetime, cap: float) -> float:
    return _clip((now - then).total_seconds() / 60.0, cap)


def _flag(condition: bool) -> float:
    return 1.0 if condition else 0.0


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local_time(profile: Profile, now: datetime) -> tuple[float, float, float, float, float]:
    zone = None if profile.time_zone is None else _zone(profile.time_zone.value)
    local = now.astimezone(zone if zone is not None else UTC)
    hour = (local.hour + local.minute / 60.0 + local.second / 3600.0) / 24.0
    weekday = local.weekday() / 7.0
    return (
        _flag(zone is not None),
        math.sin(_TAU * hour),
        math.cos(_TAU * hour),
        math.sin(_TAU * weekday),
        math.cos(_TAU * weekday),
    )


def _purchase_features(profile: Profile, now: datetime, config: ProfileConfig) -> dict[str, float]:
    purchases = profile.purchases
    scores = rfm_scores(profile, now, config.rfm)
    summary = purchase_summary(profile, now, config.business_tz)
    return {
        "rfm_r": float(scores.r),
        "rfm_f": float(scores.f),
        "rfm_m": float(scores.m),
        "has_ordered": _flag(purchases.order_count > 0),
        "orders_log": math.log1p(min(float(purchases.order_count), _MAX_ORDERS)),
        "revenue_log": _log_amount(purchases.revenue_total),
        "btyd_frequency_log": math.log1p(min(float(summary.frequency), _MAX_ORDERS)),
        "btyd_recency_days": min(float(summary.recency), _MAX_HISTORY_DAYS),
        "btyd_t_days": min(float(summary.T), _MAX_HISTORY_DAYS),
        "btyd_monetary_log": _log_amount(summary.monetary_value),
        "days_since_last_order": _days(now, purchases.last_order_at, _MAX_DAYS),
    }


def _session_features(profile: Profile, now: datetime) -> dict[str, float]:
    session = profile.session
    if session is None:
        return {
            "has_session": 0.0,
            "days_since_last_visit": _MAX_DAYS,
            "session_products": 0.0,
            "session_categories": 0.0,
            "session_searches": 0.0,
            "session_dwell_minutes": 0.0,
            "session_idle_minutes": 0.0,
            "viewed_price_mean_log": 0.0,
            "viewed_price_max_log": 0.0,
        }
    prices = [float(seen.price) for seen in session.products]
    return {
        "has_session": 1.0,
        "days_since_last_visit": _days(now, session.last_activity_at, _MAX_DAYS),
        "session_products": min(float(len(session.products)), _MAX_SESSION_ITEMS),
        "session_categories": min(float(len(session.categories)), _MAX_SESSION_ITEMS),
        "session_searches": min(float(len(session.searches)), _MAX_SESSION_ITEMS),
        "session_dwell_minutes": _minutes(now, session.started_at, _MAX_SESSION_MINUTES),
        "session_idle_minutes": _minutes(now, session.last_activity_at, _MAX_SESSION_MINUTES),
        "viewed_price_mean_log": _log_amount(sum(prices) / len(prices)) if prices else 0.0,
        "viewed_price_max_log": _log_amount(max(prices, default=0.0)),
    }


def _cart_features(profile: Profile, now: datetime) -> dict[str, float]:
    cart = profile.cart
    if cart is None:
        return {
            "has_cart": 0.0,
            "cart_value_log": 0.0,
            "cart_lines": 0.0,
            "cart_age_minutes": 0.0,
            "checkout_started": 0.0,
        }
    return {
        "has_cart": 1.0,
        "cart_value_log": _log_amount(cart.value),
        "cart_lines": min(float(len(cart.lines)), _MAX_CART_LINES),
        "cart_age_minutes": _minutes(now, cart.changed_at, _MAX_CART_MINUTES),
        "checkout_started": _flag(cart.checkout_started_at is not None),
    }


def _email_features(profile: Profile, now: datetime) -> dict[str, float]:
    rates = engagement_rates(profile, now)
    engagement = profile.engagement
    return {
        "open_rate_7d": _clip(rates.open_rate_7d, _MAX_RATE),
        "click_rate_7d": _clip(rates.click_rate_7d, _MAX_RATE),
        "open_rate_30d": _clip(rates.open_rate_30d, _MAX_RATE),
        "click_rate_30d": _clip(rates.click_rate_30d, _MAX_RATE),
        "emails_sent_log": math.log1p(min(float(engagement.sent), _MAX_SENT)),
        "soft_bounce_streak": min(float(engagement.soft_bounce_streak), _MAX_STREAK),
    }


def features(
    profile: Profile, event: InboundEvent | None, now: datetime, config: ProfileConfig
) -> dict[str, float]:
    """Compute the model features of a customer as of ``now``.

    Parameters
    ----------
    profile
        The customer's profile, with the scored event already applied.
    event
        The event being scored (only its type is used), or None when scoring
        outside an event, for instance at a deadline.
    now
        The scoring time (aware): the event time, or the deadline.
    config
        The profile settings the profile was built with: the business time
        zone of the purchase days and the RFM score edges.

    Returns
    -------
    dict[str, float]
        The keys of :data:`FEATURE_NAMES` in that order, each a finite float
        within :data:`BOUNDS`. A new dict on every call, the caller's to keep.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.clickstream import ProductView
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> view = ProductView(
    ...     event_id="e1", customer_id="c1", occurred_at=datetime(2024, 5, 1, 9, tzinfo=UTC),
    ...     product_id="sku-1", price=Decimal("49.99"), currency="EUR",
    ... )
    >>> config = ProfileConfig()
    >>> profile = apply(None, view, config).profile
    >>> x = features(profile, view, datetime(2024, 5, 1, 9, 6, tzinfo=UTC), config)
    >>> x["session_products"], x["session_dwell_minutes"], x["has_ordered"], x["event_product_view"]
    (1.0, 6.0, 0.0, 1.0)
    >>> round(x["hour_sin"], 4), round(x["hour_cos"], 4)  # 9:06 UTC: the zone is unknown
    (0.6884, -0.7254)
    >>> all(low <= x[name] <= high for name, (low, high) in BOUNDS.items())
    True

    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    x = _purchase_features(profile, now, config)
    x.update(_session_features(profile, now))
    x.update(_cart_features(profile, now))
    x.update(_email_features(profile, now))
    tz_known, hour_sin, hour_cos, weekday_sin, weekday_cos = _local_time(profile, now)
    x["tz_known"] = tz_known
    x["hour_sin"], x["hour_cos"] = hour_sin, hour_cos
    x["weekday_sin"], x["weekday_cos"] = weekday_sin, weekday_cos
    x.update(_event_flags(None if event is None else event.type))
    return x


@functools.lru_cache(maxsize=64)
def _event_flags(kind: str | None) -> Mapping[str, float]:
    """Return the one-hot ``event_*`` features of an event type (None: outside an event).

    Built once per type rather than compared type by type on every call;
    :func:`features` copies them into its own dict, in this order.
    """
    flags = {name: _flag(event_type == kind) for event_type, name in EVENT_FEATURES.items()}
    flags["event_none"] = _flag(kind is None)
    return flags
