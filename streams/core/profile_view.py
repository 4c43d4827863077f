"""The profile API's document: the stored profile plus what is derived from it.

Derived values (the buy-till-you-die summary, RFM scores and segment,
engagement rates) depend on the observation time, so they are computed at
read time for the ``as_of`` asked for, never stored stale.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from streams.core.engagement import engagement_rates
from streams.core.profile import Profile, Tombstone
from streams.core.purchases import purchase_summary
from streams.core.reducer import ProfileConfig
from streams.core.rfm import rfm_scores, segment

_INTERNAL_FIELDS = frozenset({"recent_event_ids"})
"""Bookkeeping for duplicate detection: not about the customer."""


def profile_document(
    state: Profile | Tombstone, as_of: datetime, config: ProfileConfig
) -> dict[str, Any]:
    """Build the JSON-ready document the API serves for ``state`` as of ``as_of``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> erased = Tombstone(customer_id="c1", erased_at=datetime(2024, 5, 1, tzinfo=UTC))
    >>> profile_document(erased, datetime(2024, 6, 1, tzinfo=UTC), ProfileConfig())
    {'customer_id': 'c1', 'erased': True, 'erased_at': '2024-05-01T00:00:00Z'}

    """
    if isinstance(state, Tombstone):
        return {
            "customer_id": state.customer_id,
            "erased": True,
            "erased_at": state.model_dump(mode="json")["erased_at"],
        }
    summary = purchase_summary(state, as_of, config.business_tz)
    scores = rfm_scores(state, as_of, config.rfm)
    return {
        "customer_id": state.customer_id,
        "erased": False,
        "as_of": as_of.isoformat(),
        "summary": {
            "frequency": summary.frequency,
            "recency": summary.recency,
            "T": summary.T,
            "monetary_value": str(summary.monetary_value),
        },
        "rfm": {"r": scores.r, "f": scores.f, "m": scores.m, "segment": segment(scores).value},
        "engagement_rates": dataclasses.asdict(engagement_rates(state, as_of)),
        "profile": state.model_dump(mode="json", exclude=set(_INTERNAL_FIELDS)),
    }
