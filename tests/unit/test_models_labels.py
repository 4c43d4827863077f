"""The delayed-label buffer: labels at the right moments, once, bounded, erasable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.labels import (
    ENGAGEMENT,
    PURCHASE,
    LabelledExample,
    Pending,
    erased,
    maybe_snapshot,
    resolve,
)
from schemas.cart import OrderCompleted, OrderLine
from schemas.clickstream import PageView
from schemas.email import EmailClick, EmailSent

pytestmark = pytest.mark.unit

C = "cus-1"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
H24 = timedelta(hours=24)
H72 = timedelta(hours=72)
X = {"cart_lines": 1.0, "rfm_r": 3.0}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def order(minute: float, customer: str = C) -> OrderCompleted:
    return OrderCompleted(
        event_id=f"order-{minute}",
        customer_id=customer,
        occurred_at=at(minute),
        order_id=f"o-{minute}",
        lines=(OrderLine(product_id="p", quantity=1, unit_price=Decimal(5)),),
        total=Decimal(5),
        currency="EUR",
    )


def email(kind: type[Any], minute: float) -> Any:
    return kind(
        event_id=f"{kind.__name__}-{minute}",
        customer_id=C,
        occurred_at=at(minute),
        campaign_id="cmp",
        message_id="m1",
    )


def snap(pending: Pending | None, minute: float, model: str = PURCHASE, **kwargs: Any) -> Pending:
    return maybe_snapshot(pending, C, model, {**X, "minute": float(minute)}, at(minute), **kwargs)


def taken(examples: tuple[LabelledExample, ...]) -> list[tuple[float, bool]]:
    return [((e.taken_at - T0).total_seconds() / 60, e.label) for e in examples]


# --- positives and negatives -------------------------------------------------------


def test_an_order_within_the_horizon_labels_every_open_snapshot_positive() -> None:
    pending = snap(snap(snap(None, 0), 15), 30)
    after, labelled = resolve(pending, order(120), at(120))
    assert taken(labelled) == [(0, True), (15, True), (30, True)]
    assert {e.labelled_at for e in labelled} == {at(120)}
    assert labelled[0].features == {**X, "minute": 0.0}
    assert after is not None
    assert after.examples == ()


@pytest.mark.parametrize(
    ("order_minute", "expected"),
    [
        pytest.param(-1, [], id="order-before-the-snapshot-labels-nothing"),
        pytest.param(0, [(0, True)], id="order-at-the-snapshot-time-counts"),
        pytest.param(24 * 60 - 0.01, [(0, True)], id="order-just-inside-the-horizon"),
        pytest.param(24 * 60, [], id="order-at-the-horizon-end-is-too-late"),
    ],
)
def test_the_horizon_is_half_open(order_minute: float, expected: list[tuple[float, bool]]) -> None:
    # `now` before the horizon end, so only the order can label anything
    _, labelled = resolve(snap(None, 0), order(order_minute), at(60))
    assert taken(labelled) == expected


def test_the_horizon_passing_labels_negative_at_its_end() -> None:
    pending = snap(snap(None, 0), 60)
    same, labelled = resolve(pending, None, at(24 * 60 - 1))
    assert same is pending
    assert labelled == ()
    after, labelled = resolve(pending, None, at(24 * 60))
    assert taken(labelled) == [(0, False)]
    assert labelled[0].labelled_at == at(24 * 60)  # the horizon's end, not when we noticed
    assert after is not None
    assert [e.taken_at for e in after.examples] == [at(60)]
    _, late = resolve(after, None, at(10 * 24 * 60))
    assert taken(late) == [(60, False)]
    assert late[0].labelled_at == at(25 * 60)


def test_an_order_labels_open_snapshots_and_the_same_call_expires_old_ones() -> None:
    pending = snap(snap(None, 0), 23 * 60)
    _, labelled = resolve(pending, order(25 * 60), at(25 * 60))
    assert taken(labelled) == [(23 * 60, True), (0, False)]


def test_other_events_only_move_the_clock() -> None:
    view = PageView(event_id="v", customer_id=C, occurred_at=at(30), url="https://s.e/")
    pending = snap(None, 0)
    assert resolve(pending, view, at(30)) == (pending, ())


# --- each example once -------------------------------------------------------------


def test_each_example_is_labelled_once() -> None:
    pending = snap(None, 0)
    after, first = resolve(pending, order(60), at(60))
    again, second = resolve(after, order(60), at(60))  # the order redelivered
    _, third = resolve(again, None, at(48 * 60))  # and the horizon passes
    assert taken(first) == [(0, True)]
    assert second == ()
    assert third == ()


def test_the_example_id_is_stable_and_distinct() -> None:
    _, one = resolve(snap(snap(None, 0), 30), order(60), at(60))
    ids = [e.example_id for e in one]
    assert len(set(ids)) == 2
    assert [LabelledExample.from_bytes(e.to_bytes()).example_id for e in one] == ids


# --- rate limit and bound ----------------------------------------------------------


def test_at_most_one_snapshot_per_interval_per_model() -> None:
    pending = snap(None, 0)
    assert snap(pending, 5) is pending
    assert snap(pending, 9.99) is pending
    pending = snap(pending, 10)
    assert snap(pending, 12) is pending
    pending = snap(pending, 12, model=ENGAGEMENT)  # another model has its own clock
    assert [(e.model, e.taken_at) for e in pending.examples] == [
        (PURCHASE, at(0)),
        (PURCHASE, at(10)),
        (ENGAGEMENT, at(12)),
    ]


def test_the_interval_counts_from_the_last_snapshot_even_once_labelled() -> None:
    pending, _ = resolve(snap(None, 0), order(1), at(1))
    assert pending is not None
    assert pending.examples == ()
    assert snap(pending, 5) is pending
    assert len(snap(pending, 10).examples) == 1


def test_a_late_event_never_snapshots() -> None:
    pending = snap(None, 60)
    assert snap(pending, 30) is pending  # 30 minutes late
    assert snap(pending, 0, min_interval=timedelta(0)) is pending


def test_pending_is_bounded_per_customer_oldest_dropped_and_counted() -> None:
    pending = None
    for minute in range(0, 50, 10):
        pending = snap(pending, minute, max_pending=3)
    assert pending is not None
    assert [e.taken_at for e in pending.examples] == [at(20), at(30), at(40)]
    assert pending.dropped == 2


def test_the_bound_drops_the_oldest_whatever_the_model() -> None:
    pending = snap(None, 10, model=ENGAGEMENT, max_pending=2)
    pending = snap(pending, 20, max_pending=2)
    pending = snap(pending, 30, model=ENGAGEMENT, max_pending=2)
    assert [(e.model, e.taken_at) for e in pending.examples] == [
        (PURCHASE, at(20)),
        (ENGAGEMENT, at(30)),
    ]


# --- engagement --------------------------------------------------------------------


def engagement_sent(pending: Pending | None, minute: float) -> Pending:
    return snap(pending, minute, model=ENGAGEMENT, min_interval=timedelta(0), horizon=H72)


def test_a_click_within_72_hours_of_a_send_is_positive() -> None:
    pending = engagement_sent(None, 0)
    _, labelled = resolve(pending, email(EmailClick, 71 * 60), at(71 * 60))
    assert [(e.model, e.label) for e in labelled] == [(ENGAGEMENT, True)]


def test_no_click_for_72_hours_is_negative() -> None:
    pending = engagement_sent(None, 0)
    same, _ = resolve(pending, email(EmailClick, 72 * 60), at(60))  # too late to count
    assert same is pending
    _, labelled = resolve(pending, None, at(72 * 60))
    assert [(e.model, e.label) for e in labelled] == [(ENGAGEMENT, False)]


def test_outcomes_label_their_own_model_only() -> None:
    pending = engagement_sent(snap(None, 0), 1)
    after, by_order = resolve(pending, order(30), at(30))
    assert [(e.model, e.label) for e in by_order] == [(PURCHASE, True)]
    _, by_click = resolve(after, email(EmailClick, 40), at(40))
    assert [(e.model, e.label) for e in by_click] == [(ENGAGEMENT, True)]


def test_every_send_gets_its_own_snapshot() -> None:
    pending = engagement_sent(engagement_sent(None, 0), 0)
    pending = engagement_sent(pending, 5)
    assert len(pending.examples) == 3
    assert resolve(pending, email(EmailSent, 6), at(6)) == (pending, ())


# --- erasure, bytes, misuse --------------------------------------------------------


def test_erasure_leaves_nothing_pending() -> None:
    pending = engagement_sent(snap(snap(None, 0), 10), 11)
    gone = erased(C)
    assert gone == Pending(customer_id=C)
    assert gone.examples == ()
    assert gone.last_taken_at == {}
    assert gone.dropped == 0
    assert resolve(gone, order(20), at(10_000)) == (gone, ())
    assert pending.examples  # the old value is untouched


def test_state_and_examples_round_trip_through_bytes() -> None:
    pending = engagement_sent(snap(None, 0), 3)
    pending = maybe_snapshot(pending, C, PURCHASE, {"tiny": 1e-300, "third": 1 / 3}, at(20))
    assert Pending.from_bytes(pending.to_bytes()) == pending
    _, labelled = resolve(pending, order(30), at(30))
    assert [LabelledExample.from_bytes(e.to_bytes()) for e in labelled] == list(labelled)


def test_misuse_is_refused() -> None:
    pending = snap(None, 0)
    with pytest.raises(ValueError, match="state of"):
        maybe_snapshot(pending, "someone-else", PURCHASE, X, at(30))
    with pytest.raises(ValueError, match="state of"):
        resolve(pending, order(30, customer="someone-else"), at(30))
    with pytest.raises(ValueError, match="finite"):
        maybe_snapshot(None, C, PURCHASE, {"x": float("nan")}, at(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve(pending, None, datetime(2024, 5, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="max_pending"):
        maybe_snapshot(None, C, PURCHASE, X, at(0), max_pending=0)


def test_next_horizon_end_is_the_earliest() -> None:
    assert erased(C).next_horizon_end is None
    pending = engagement_sent(snap(None, 0), 10)
    assert pending.next_horizon_end == at(24 * 60)


# --- reordering: labels depend on event times, not on how the clock ticked ---------


@given(
    snapshots=st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=12),
    order_minute=st.integers(0, 4 * 24 * 60),
    ticks=st.lists(st.integers(0, 4 * 24 * 60), max_size=10),
)
@settings(max_examples=300, deadline=None)
def test_labels_do_not_depend_on_clock_ticks_before_the_order(
    snapshots: list[int], order_minute: int, ticks: list[int]
) -> None:
    # Snapshots arrive in any order (late ones are skipped), then the clock
    # ticks up to the order's time in any pattern, the order arrives, the
    # clock runs out. The labels must be what the event times say.
    pending: Pending | None = None
    for minute in snapshots:
        pending = snap(pending, minute)
    assert pending is not None
    kept = [(e.taken_at, e.horizon_ends_at) for e in pending.examples]
    out: list[LabelledExample] = []
    for tick in sorted(t for t in ticks if t <= order_minute):
        pending, labelled = resolve(pending, None, at(tick))
        out.extend(labelled)
    pending, labelled = resolve(pending, order(order_minute), at(order_minute))
    out.extend(labelled)
    pending, labelled = resolve(pending, None, at(10 * 24 * 60))
    out.extend(labelled)

    when = at(order_minute)
    expected = sorted(
        (start, start <= when < end, when if start <= when < end else end) for start, end in kept
    )
    assert sorted((e.taken_at, e.label, e.labelled_at) for e in out) == expected
    assert pending is not None
    assert pending.examples == ()
