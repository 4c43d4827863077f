from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.clock import Watermark

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATENESS = timedelta(minutes=5)


def test_nothing_seen_nothing_due() -> None:
    assert Watermark(LATENESS).now() is None
    assert not Watermark(LATENESS).is_late(T0)


def test_an_older_event_does_not_move_the_watermark_back() -> None:
    mark = Watermark(LATENESS).observe(T0).observe(T0 - timedelta(hours=1))
    assert mark.now() == T0 - LATENESS


def test_the_wall_clock_moves_a_quiet_partition_forward() -> None:
    mark = Watermark(LATENESS).observe(T0).tick(T0 + timedelta(hours=2))
    assert mark.now() == T0 + timedelta(hours=2) - LATENESS


def test_lateness_is_judged_against_the_watermark() -> None:
    mark = Watermark(LATENESS).observe(T0)
    assert not mark.is_late(T0 - LATENESS)
    assert mark.is_late(T0 - LATENESS - timedelta(seconds=1))


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1))
def test_the_watermark_never_goes_back(offsets: list[int]) -> None:
    mark = Watermark(LATENESS)
    seen = []
    for offset in offsets:
        mark = mark.observe(T0 + timedelta(seconds=offset))
        now = mark.now()
        assert now is not None
        seen.append(now)
    assert seen == sorted(seen)
    assert seen[-1] == T0 + timedelta(seconds=max(offsets)) - LATENESS


def test_an_event_from_year_one_saturates_instead_of_overflowing() -> None:
    first = datetime(1, 1, 1, tzinfo=UTC)
    mark = Watermark(LATENESS).observe(first)
    assert mark.now() == datetime.min.replace(tzinfo=UTC)
    assert not mark.is_late(first)
    assert mark.observe(T0).now() == T0 - LATENESS
