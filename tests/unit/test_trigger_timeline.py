"""The whole loop in event time: ties, late events, erasure, re-offers, replay determinism.

The builders at the top are the vocabulary of every trigger scenario table
(``test_trigger_*.py``, ``test_policy*.py`` import them): real event classes,
real reducer, times written as ``"10:00"`` on 1 May 2024 (UTC).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

import pytest

from schemas.cart import CartAdd, CartRemove, CheckoutStarted, OrderCompleted, OrderLine
from schemas.clickstream import PageView, ProductView
from schemas.codec import InboundEvent
from schemas.customers import ConsentChanged, CustomerErased, ProfileAttributes
from schemas.email import EmailBounce, EmailComplaint, EmailDelivered, EmailUnsubscribe
from schemas.envelope import Envelope
from schemas.triggers import Outcome, TriggerType
from streams.core.policy import PolicyConfig, decide
from streams.core.profile import Profile, Tombstone, record_trigger
from streams.core.reducer import ProfileConfig, apply
from streams.core.rfm import Segment
from streams.core.triggers.base import Score, TriggerConfig
from streams.core.triggers.timeline import Fired, Timeline, replay

pytestmark = pytest.mark.unit

DAY0 = datetime(2024, 5, 1, tzinfo=UTC)
CUSTOMER = "cus-1"
BROWSE, CART, HIGH = (
    TriggerType.browse_abandonment,
    TriggerType.cart_abandonment,
    TriggerType.high_intent,
)
_ids = itertools.count(1)

Timed = Envelope | tuple[Envelope, float | None]
"""An event, or an event with the probability the model gave the customer at it."""


# --- builders ----------------------------------------------------------------


def at(clock: str, day: int = 0) -> datetime:
    """``"10:30"`` on 1 May 2024 plus ``day`` days, UTC."""
    hours, minutes = map(int, clock.split(":"))
    return DAY0 + timedelta(days=day, hours=hours, minutes=minutes)


def _envelope(clock: str, day: int, session: str | None, customer: str) -> dict[str, Any]:
    return {
        "event_id": f"evt-{next(_ids)}",
        "customer_id": customer,
        "occurred_at": at(clock, day),
        "session_id": session,
    }


def view(
    clock: str,
    product: str = "sku-1",
    *,
    price: str = "20",
    category: str | None = "shoes",
    day: int = 0,
    session: str | None = "s1",
    customer: str = CUSTOMER,
) -> ProductView:
    return ProductView(
        **_envelope(clock, day, session, customer),
        product_id=product,
        price=Decimal(price),
        currency="EUR",
        category=category,
    )


def page(
    clock: str, *, day: int = 0, session: str | None = "s1", customer: str = CUSTOMER
) -> PageView:
    return PageView(**_envelope(clock, day, session, customer), url="https://shop.example/")


def add(
    clock: str,
    product: str = "sku-1",
    *,
    price: str = "20",
    quantity: int = 1,
    cart: str = "cart-1",
    day: int = 0,
    session: str | None = "s1",
    customer: str = CUSTOMER,
) -> CartAdd:
    return CartAdd(
        **_envelope(clock, day, session, customer),
        cart_id=cart,
        product_id=product,
        quantity=quantity,
        unit_price=Decimal(price),
        currency="EUR",
    )


def remove(
    clock: str,
    product: str = "sku-1",
    *,
    quantity: int = 1,
    cart: str = "cart-1",
    day: int = 0,
    session: str | None = "s1",
) -> CartRemove:
    return CartRemove(
        **_envelope(clock, day, session, CUSTOMER),
        cart_id=cart,
        product_id=product,
        quantity=quantity,
        unit_price=Decimal("20"),
        currency="EUR",
    )


def checkout(
    clock: str, *, cart: str = "cart-1", day: int = 0, session: str | None = "s1"
) -> CheckoutStarted:
    return CheckoutStarted(**_envelope(clock, day, session, CUSTOMER), cart_id=cart)


def order(
    clock: str, *, day: int = 0, cart: str | None = None, customer: str = CUSTOMER
) -> OrderCompleted:
    line = OrderLine(product_id="sku-1", quantity=1, unit_price=Decimal("40"))
    envelope = _envelope(clock, day, None, customer)
    return OrderCompleted(
        **envelope,
        order_id=f"ord-{envelope['event_id']}",
        lines=(line,),
        total=Decimal("40"),
        currency="EUR",
        cart_id=cart,
    )


def consent(
    granted: bool = True, clock: str = "00:00", *, day: int = -30, customer: str = CUSTOMER
) -> ConsentChanged:
    return ConsentChanged(**_envelope(clock, day, None, customer), channel="email", granted=granted)


def zone(
    time_zone: str | None = None,
    locale: str | None = None,
    *,
    clock: str = "00:00",
    day: int = -30,
    customer: str = CUSTOMER,
) -> ProfileAttributes:
    return ProfileAttributes(
        **_envelope(clock, day, None, customer), time_zone=time_zone, locale=locale
    )


_EMAIL: dict[str, Any] = {"campaign_id": "cmp-1", "message_id": "msg-1"}


def unsubscribe(clock: str = "00:00", *, day: int = -1) -> EmailUnsubscribe:
    return EmailUnsubscribe(**_envelope(clock, day, None, CUSTOMER), **_EMAIL)


def complaint(clock: str = "00:00", *, day: int = -1) -> EmailComplaint:
    return EmailComplaint(**_envelope(clock, day, None, CUSTOMER), **_EMAIL)


def bounce(kind: Literal["hard", "soft"], clock: str = "00:00", *, day: int = -1) -> EmailBounce:
    return EmailBounce(**_envelope(clock, day, None, CUSTOMER), **_EMAIL, bounce_type=kind)


def delivered(clock: str = "00:00", *, day: int = -1) -> EmailDelivered:
    return EmailDelivered(**_envelope(clock, day, None, CUSTOMER), **_EMAIL)


def erased(clock: str, *, day: int = 0) -> CustomerErased:
    return CustomerErased(**_envelope(clock, day, None, CUSTOMER))


def scored(event: Envelope, probability: float | None) -> tuple[Envelope, float | None]:
    return event, probability


def profile_of(*events: InboundEvent) -> Profile:
    """A profile built by the real reducer from the events, in order."""
    state: Profile | Tombstone | None = None
    for event in events:
        state = apply(state, event, ProfileConfig()).profile
    assert isinstance(state, Profile)
    return state


def history(**last: datetime) -> dict[str, Profile | Tombstone]:
    """A customer's state before the scenario: triggers recorded at the given times."""
    first = min(last.values(), default=at("00:00", day=-60))
    profile = Profile(
        customer_id=CUSTOMER,
        first_seen=first,
        last_seen=first,
        segment=Segment.prospect,
        segment_as_of=first,
    )
    for trigger_type, when in last.items():
        profile = record_trigger(profile, trigger_type, when)
    return {CUSTOMER: profile}


def run(
    events: Iterable[Timed],
    *,
    until: datetime | None = None,
    config: TriggerConfig | None = None,
    policy: PolicyConfig | None = None,
    states: dict[str, Profile | Tombstone] | None = None,
    lateness: timedelta = timedelta(0),
    salt: str = "exp-1",
) -> Timeline:
    """Replay the events (probabilities become scores of model ``m1``) up to ``until``."""
    pairs = []
    for item in events:
        event, probability = item if isinstance(item, tuple) else (item, None)
        score = None if probability is None else Score(probability, "m1")
        pairs.append((cast(InboundEvent, event), score))
    return replay(
        pairs,
        until=until or at("00:00", day=30),
        lateness=lateness,
        states=states,
        trigger_config=config,
        policy=policy,
        salt=salt,
    )


def of_type(timeline: Timeline, trigger_type: TriggerType) -> list[Fired]:
    return [f for f in timeline.fired if f.candidate.trigger_type is trigger_type]


def clocks(fired: Sequence[Fired]) -> list[tuple[str, datetime]]:
    return [(f.candidate.trigger_type.value, f.candidate.occurred_at) for f in fired]


OPEN = PolicyConfig(holdout_share=0.0)
"""The default policy without a holdout, for scenarios about sending."""


def test_builders_make_valid_events_in_order() -> None:
    assert at("10:30", day=1) == datetime(2024, 5, 2, 10, 30, tzinfo=UTC)
    assert view("10:00").occurred_at < add("10:01").occurred_at
    assert view("10:00").event_id != view("10:00").event_id


# --- the loop ----------------------------------------------------------------


def test_a_deadline_fires_before_an_event_at_the_same_instant() -> None:
    timeline = run([view("10:00"), add("11:00")])
    assert clocks(of_type(timeline, BROWSE)) == [("browse_abandonment", at("11:00"))]


def test_a_straggler_within_the_allowed_lateness_still_cancels() -> None:
    # Arrival order: the 11:04 page view moves the watermark to 10:59 only,
    # so the deadline (11:00) has not fired when the 10:58 add arrives.
    events = [view("10:00"), page("11:04"), add("10:58"), page("11:30")]
    timeline = run(events, lateness=timedelta(minutes=5))
    assert of_type(timeline, BROWSE) == []


def test_without_lateness_the_same_straggler_is_too_late() -> None:
    events = [view("10:00"), page("11:04"), add("10:58"), page("11:30")]
    timeline = run(events)
    assert clocks(of_type(timeline, BROWSE)) == [("browse_abandonment", at("11:00"))]


def test_a_late_view_never_fires_a_deadline_already_passed() -> None:
    # The 10:30 view arrives at 12:00 event time: its deadline (11:30) is past.
    events = [view("10:00", "sku-1"), page("12:00"), view("10:30", "sku-2")]
    timeline = run(events)
    fired = of_type(timeline, BROWSE)
    assert clocks(fired) == [("browse_abandonment", at("11:00"))]
    assert timeline.pending == ()


def test_erasure_drops_pending_deadlines_and_nothing_fires() -> None:
    timeline = run([consent(), view("10:00"), add("10:10", cart="cart-9"), erased("10:30")])
    assert timeline.fired == ()
    assert timeline.pending == ()
    assert isinstance(timeline.states[CUSTOMER], Tombstone)


def test_a_redelivered_event_changes_nothing() -> None:
    first = view("10:00")
    again = first.model_copy()
    timeline = run([first, again])
    assert len(of_type(timeline, BROWSE)) == 1


def test_a_capped_trigger_is_offered_once_more_when_the_cap_frees() -> None:
    events: list[Timed] = [consent(), scored(page("10:00"), 0.9), view("10:05")]
    timeline = run(events, policy=OPEN)
    outcomes = [
        (f.candidate.trigger_type.value, f.decision.outcome.value, f.candidate.attempt)
        for f in timeline.fired
        if f.decision
    ]
    assert outcomes == [
        ("high_intent", "sent", 0),
        ("browse_abandonment", "capped", 0),
        ("browse_abandonment", "sent", 1),
    ]
    capped, resent = timeline.fired[1], timeline.fired[2]
    assert capped.decision is not None
    assert capped.decision.retry_after == at("02:00", day=1)
    assert resent.now == at("02:00", day=1)
    assert resent.candidate.occurred_at == at("11:05")
    assert resent.candidate.trigger_id == capped.candidate.trigger_id


def test_a_re_offer_rechecks_the_rule_an_order_since_means_none() -> None:
    events: list[Timed] = [consent(), scored(page("10:00"), 0.9), view("10:05"), order("20:00")]
    timeline = run(events, policy=OPEN)
    assert [f.decision.outcome.value for f in timeline.fired if f.decision] == ["sent", "capped"]
    assert timeline.pending == ()


def test_a_re_offer_finds_the_customer_in_a_new_session_and_offers_nothing() -> None:
    # The 02:00 re-offer is about session s1, but the customer is in s2 by then.
    events: list[Timed] = [
        consent(),
        scored(page("10:00"), 0.9),
        view("10:05"),
        page("01:00", day=1, session="s2"),
    ]
    timeline = run(events, policy=OPEN)
    assert [f.decision.outcome.value for f in timeline.fired if f.decision] == ["sent", "capped"]
    assert timeline.pending == ()


# --- replay ------------------------------------------------------------------


def _shop(seed: int, customers: int = 30) -> list[Timed]:
    """A seeded day of a small shop: sessions of views, carts, orders, scores."""
    rng = random.Random(seed)
    events: list[tuple[datetime, Timed]] = []
    for n in range(customers):
        customer = f"c{n:03d}"
        events.append((at("00:00", day=-10), consent(customer=customer, day=-10)))
        start = at("08:00") + timedelta(minutes=rng.randrange(0, 600))
        session = f"{customer}-s"
        for step in range(rng.randrange(1, 8)):
            when = start + timedelta(minutes=3 * step)
            clock = when.strftime("%H:%M")
            kind = rng.random()
            event: InboundEvent
            if kind < 0.6:
                event = view(clock, f"sku-{rng.randrange(20)}", session=session, customer=customer)
            elif kind < 0.85:
                event = add(
                    clock,
                    f"sku-{rng.randrange(20)}",
                    session=session,
                    customer=customer,
                    cart=f"{customer}-cart",
                )
            else:
                event = order(clock, customer=customer, cart=f"{customer}-cart")
            events.append((when, scored(event, round(rng.random(), 3))))
    events.sort(key=lambda pair: pair[0])
    return [item for _, item in events]


def _wire(timeline: Timeline) -> list[bytes]:
    out = []
    for fired in timeline.fired:
        assert fired.decision is not None
        out.append(fired.decision.message().to_bytes())
        if fired.decision.trigger is not None:
            out.append(fired.decision.trigger.to_bytes())
    return out


def test_replaying_the_same_events_gives_the_same_bytes() -> None:
    events = _shop(seed=7)
    first = run(events, policy=PolicyConfig())
    second = run(events, policy=PolicyConfig())
    assert _wire(first)
    assert _wire(first) == _wire(second)
    kinds = {f.candidate.trigger_type for f in first.fired}
    assert kinds == {BROWSE, CART, HIGH}


@pytest.mark.parametrize("seed", range(5))
def test_a_trigger_id_is_decided_for_good_at_most_once_and_last(seed: int) -> None:
    # Half the shop never consented: their triggers are suppressed, and a
    # suppressed trigger must not be decided again on the next qualifying event.
    events = [
        item
        for item in _shop(seed=seed)
        if not (isinstance(item, ConsentChanged) and item.customer_id[-1] in "02468")
    ]
    timeline = run(events, policy=PolicyConfig(cap_window=timedelta(hours=2)))
    by_trigger: dict[str, list[bool]] = {}
    for fired in timeline.fired:
        assert fired.decision is not None
        by_trigger.setdefault(fired.candidate.trigger_id, []).append(fired.decision.final)
    assert any(len(finals) > 1 for finals in by_trigger.values())  # re-offers happen
    for finals in by_trigger.values():
        # Capped-and-offered-again decisions first, then at most one final one.
        assert not any(finals[:-1])
    outcomes = {f.decision.outcome for f in timeline.fired if f.decision}
    assert {Outcome.suppressed, Outcome.capped, Outcome.sent} <= outcomes


def test_deciding_a_tombstone_suppresses_as_erased() -> None:
    timeline = run([consent(), view("10:00")], policy=OPEN)
    (fired,) = timeline.fired
    tombstone = Tombstone(customer_id=CUSTOMER, erased_at=at("10:30"))
    decision = decide(tombstone, fired.candidate, at("11:00"), OPEN, "exp-1")
    assert decision.outcome is Outcome.suppressed
    assert str(decision.reason) == "erased"
    assert decision.trigger is None
