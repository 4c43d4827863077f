"""Invariants of the policy, for any sequence hypothesis can think of.

The frequency cap is the promise made to every customer: whatever the rules
offer, in whatever order, with re-offers and quiet hours, no window of
``cap_window`` ever holds more than ``cap_count`` emails (held-out ones
count: they keep the same cadence).
"""

from __future__ import annotations

import heapq
from datetime import datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.triggers import Outcome, TriggerType
from streams.core.policy import PolicyConfig, QuietHours, apply_decision, decide
from streams.core.profile import Profile, Tombstone
from tests.unit.test_policy import OK, candidate
from tests.unit.test_trigger_timeline import at

pytestmark = pytest.mark.unit

Offer = tuple[TriggerType, int]  # (type, minutes after 1 May 2024 00:00 UTC)

offers = st.lists(
    st.tuples(st.sampled_from(list(TriggerType)), st.integers(min_value=0, max_value=7 * 24 * 60)),
    max_size=40,
)
configs = st.builds(
    PolicyConfig,
    cap_count=st.integers(min_value=1, max_value=3),
    cap_window=st.integers(min_value=1, max_value=48).map(lambda h: timedelta(hours=h)),
    holdout_share=st.sampled_from([0.0, 0.5, 1.0]),
    quiet_hours=st.sampled_from(
        [None, QuietHours(time(21), time(8)), QuietHours(time(1), time(3))]
    ),
    reoffer_within=st.sampled_from([timedelta(hours=1), timedelta(hours=24), timedelta(days=9)]),
)


def _sends(
    config: PolicyConfig, queue: list[tuple[datetime, int, TriggerType, int, datetime]]
) -> list[datetime]:
    """Decide everything in the queue in its order (re-offers join it); return the send times."""
    profile: Profile | Tombstone = OK
    sends: list[datetime] = []
    heapq.heapify(queue)
    while queue:
        offered, n, trigger_type, attempt, when = heapq.heappop(queue)
        offer = candidate(trigger_type, when, key=f"k{n}", attempt=attempt, offered_at=offered)
        decision = decide(profile, offer, offered, config, "exp-1")
        profile = apply_decision(profile, decision)
        if decision.recorded_at is not None:
            sends.append(decision.recorded_at)
        if decision.outcome is Outcome.capped and decision.retry_after is not None:
            assert decision.retry_after > offered
            heapq.heappush(queue, (decision.retry_after, n, trigger_type, attempt + 1, when))
    return sends


def _most_in_a_window(sends: list[datetime], window: timedelta) -> int:
    ordered = sorted(sends)
    return max(
        (sum(1 for s in ordered if start <= s < start + window) for start in ordered), default=0
    )


@settings(max_examples=300, deadline=None)
@given(offers=offers, config=configs)
def test_the_cap_is_never_exceeded_in_event_time_order(
    offers: list[Offer], config: PolicyConfig
) -> None:
    times = [at("00:00") + timedelta(minutes=m) for _, m in offers]
    queue = [
        (when, n, kind, 0, when)
        for n, ((kind, _), when) in enumerate(zip(offers, times, strict=True))
    ]
    sends = _sends(config, queue)
    assert _most_in_a_window(sends, config.cap_window) <= config.cap_count


@settings(max_examples=300, deadline=None)
@given(
    offers=st.lists(
        st.tuples(
            st.sampled_from(list(TriggerType)),
            st.integers(min_value=0, max_value=3 * 24 * 60),
            st.floats(min_value=0.0, max_value=0.99),
        ),
        max_size=30,
    ),
    window_hours=st.integers(min_value=1, max_value=24),
)
def test_one_per_window_holds_when_decisions_come_out_of_order_by_less_than_a_window(
    offers: list[tuple[TriggerType, int, float]], window_hours: int
) -> None:
    # Decided in order of time + jitter (jitter < window): out of order, but
    # never by a window or more, as with a watermark's lateness.
    config = PolicyConfig(holdout_share=0.0, cap_window=timedelta(hours=window_hours))
    window = config.cap_window
    timed = [
        (at("00:00") + timedelta(minutes=m), jitter, n, kind)
        for n, (kind, m, jitter) in enumerate(offers)
    ]
    timed.sort(key=lambda item: item[0] + item[1] * window)
    profile: Profile | Tombstone = OK
    sends = []
    for when, _, n, kind in timed:
        decision = decide(profile, candidate(kind, when, key=f"k{n}"), when, config, "exp-1")
        profile = apply_decision(profile, decision)
        if decision.recorded_at is not None:
            sends.append(decision.recorded_at)
    assert _most_in_a_window(sends, window) <= 1


@settings(max_examples=200, deadline=None)
@given(offers=offers, config=configs)
def test_deciding_is_deterministic(offers: list[Offer], config: PolicyConfig) -> None:
    def run() -> list[bytes]:
        profile: Profile | Tombstone = OK
        out = []
        for n, (kind, minutes) in enumerate(offers):
            when = at("00:00") + timedelta(minutes=minutes)
            decision = decide(profile, candidate(kind, when, key=f"k{n}"), when, config, "s")
            profile = apply_decision(profile, decision)
            out.append(decision.message().to_bytes())
        return out

    assert run() == run()
