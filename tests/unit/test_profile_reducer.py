"""The profile reducer, scenario by scenario: timed events in, profile and outputs out."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.cart import OrderLine
from schemas.codec import InboundEvent
from schemas.profiles import ProfileErased, SegmentChanged
from streams.core.attributes import ConsentState, Stamped
from streams.core.cart import CartLine
from streams.core.engagement import Decayed, engagement_rates
from streams.core.profile import Profile, Tombstone, record_trigger, state_from_bytes
from streams.core.reducer import ProfileConfig, Step, apply
from streams.core.rfm import Segment
from streams.core.session import ProductSeen, Seen
from tests.unit.schema_samples import ALL_TYPES, CLASS_OF

pytestmark = pytest.mark.unit

D = Decimal
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = ProfileConfig()
_EMAIL = {"campaign_id": "cmp-1", "message_id": "msg-1"}
_LINE = {"product_id": "sku-1", "quantity": 2, "unit_price": D("19.99"), "currency": "EUR"}

# Python values (Decimal, tuples) for the required fields of each event type.
DEFAULTS: dict[str, dict[str, Any]] = {
    "page_view": {"url": "https://shop.example/"},
    "product_view": {"product_id": "sku-1", "price": D("19.99"), "currency": "EUR"},
    "category_view": {"category": "Shoes"},
    "search": {"query": "red shoes"},
    "cart_add": {"cart_id": "cart-1", **_LINE},
    "cart_remove": {"cart_id": "cart-1", **_LINE},
    "checkout_started": {"cart_id": "cart-1"},
    "order_completed": {
        "order_id": "ord-1",
        "lines": (OrderLine(product_id="sku-1", quantity=2, unit_price=D("10.00")),),
        "total": D("24.90"),
        "currency": "EUR",
    },
    "email_sent": _EMAIL,
    "email_delivered": _EMAIL,
    "email_open": _EMAIL,
    "email_click": _EMAIL,
    "email_bounce": {**_EMAIL, "bounce_type": "hard"},
    "email_unsubscribe": _EMAIL,
    "email_complaint": _EMAIL,
    "consent_changed": {"channel": "email", "granted": True},
    "customer_erased": {},
    "profile_attributes": {"time_zone": "Europe/Paris", "locale": "fr-FR"},
}
assert set(DEFAULTS) == set(ALL_TYPES)

_numbers = itertools.count(1)


def at(minutes: float = 0, *, days: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, days=days)


def make(
    kind: str,
    when: datetime = T0,
    *,
    event_id: str | None = None,
    customer_id: str = "cus-1",
    **fields: Any,
) -> InboundEvent:
    """An event of ``kind`` with the defaults above, overridden by ``fields``."""
    event: InboundEvent = CLASS_OF[kind](
        event_id=event_id or f"evt-{next(_numbers)}",
        customer_id=customer_id,
        occurred_at=when,
        **{**DEFAULTS[kind], **fields},
    )
    return event


def order(
    order_id: str, when: datetime, total: str, *, cart_id: str | None = None, event_id: str = ""
) -> InboundEvent:
    return make(
        "order_completed",
        when,
        event_id=event_id or None,
        order_id=order_id,
        total=D(total),
        cart_id=cart_id,
    )


def run(
    events: Iterable[InboundEvent],
    config: ProfileConfig = CONFIG,
    state: Profile | Tombstone | None = None,
) -> tuple[Profile | Tombstone | None, list[Step]]:
    steps = []
    for event in events:
        step = apply(state, event, config)
        steps.append(step)
        state = step.profile
    return state, steps


def profile_of(events: Iterable[InboundEvent], config: ProfileConfig = CONFIG) -> Profile:
    state, _ = run(events, config)
    assert isinstance(state, Profile)
    return state


def dig(value: object, path: str) -> object:
    for name in path.split("."):
        value = getattr(value, name)
    return value


# --- one scenario per event type ---------------------------------------------

S = "ses-1"
EVENT_CASES = [
    pytest.param(
        [make("page_view", at(1), session_id=S)],
        {
            "session.session_id": S,
            "session.started_at": at(1),
            "session.last_activity_at": at(1),
            "session.products": (),
        },
        id="page_view",
    ),
    pytest.param(
        [make("product_view", at(1), session_id=S, category="Shoes")],
        {"session.products": (ProductSeen("sku-1", D("19.99"), "EUR", "Shoes", at(1)),)},
        id="product_view",
    ),
    pytest.param(
        [make("category_view", at(1), session_id=S)],
        {"session.categories": (Seen("Shoes", at(1)),)},
        id="category_view",
    ),
    pytest.param(
        [make("search", at(1), session_id=S)],
        {"session.searches": (Seen("red shoes", at(1)),)},
        id="search",
    ),
    pytest.param(
        [make("cart_add", at(1), session_id=S)],
        {
            "cart.cart_id": "cart-1",
            "cart.lines": {"sku-1": CartLine(2, D("19.99"))},
            "cart.value": D("39.98"),
            "cart.currency": "EUR",
            "cart.changed_at": at(1),
            "session.session_id": S,
        },
        id="cart_add",
    ),
    pytest.param(
        [make("cart_add", at(1), quantity=3), make("cart_remove", at(2), quantity=1)],
        {"cart.lines": {"sku-1": CartLine(2, D("19.99"))}, "cart.changed_at": at(2)},
        id="cart_remove",
    ),
    pytest.param(
        [make("cart_add", at(1)), make("checkout_started", at(2))],
        {"cart.checkout_started_at": at(2), "cart.value": D("39.98")},
        id="checkout_started",
    ),
    pytest.param(
        [make("order_completed", at(1))],
        {
            "purchases.order_ids": ("ord-1",),
            "purchases.order_count": 1,
            "purchases.first_order_at": at(1),
            "purchases.last_order_at": at(1),
            "purchases.revenue_total": D("24.90"),
            "purchases.purchase_days": {"2024-05-01": D("24.90")},
            "segment": Segment.new_customer,
            "session": None,
        },
        id="order_completed",
    ),
    pytest.param(
        [make("email_sent", at(1))],
        {
            "engagement.sent": 1,
            "engagement.last_sent_at": at(1),
            "engagement.sends_decayed": Decayed(at(1), 1.0, 1.0),
            "session": None,
        },
        id="email_sent",
    ),
    pytest.param(
        [make("email_delivered", at(1))],
        {"engagement.delivered": 1, "engagement.last_delivered_at": at(1)},
        id="email_delivered",
    ),
    pytest.param(
        [make("email_open", at(1))],
        {
            "engagement.opened": 1,
            "engagement.last_opened_at": at(1),
            "engagement.opens_decayed": Decayed(at(1), 1.0, 1.0),
        },
        id="email_open",
    ),
    pytest.param(
        [make("email_click", at(1))],
        {
            "engagement.clicked": 1,
            "engagement.last_clicked_at": at(1),
            "engagement.clicks_decayed": Decayed(at(1), 1.0, 1.0),
        },
        id="email_click",
    ),
    pytest.param(
        [make("email_bounce", at(2), bounce_type="hard"), make("email_bounce", at(1))],
        {"engagement.hard_bounced": True, "engagement.hard_bounced_at": at(1)},
        id="email_bounce-hard-first-time-kept",
    ),
    pytest.param(
        [make("email_bounce", at(m), bounce_type="soft") for m in (1, 2, 3)],
        {
            "engagement.soft_bounce_streak": 3,
            "engagement.hard_bounced": False,
            "engagement.soft_bounces": (at(1), at(2), at(3)),
        },
        id="email_bounce-soft",
    ),
    pytest.param(
        [make("email_unsubscribe", at(1)), make("email_unsubscribe", at(5))],
        {"engagement.unsubscribed": True, "engagement.unsubscribed_at": at(5)},
        id="email_unsubscribe",
    ),
    pytest.param(
        [make("email_complaint", at(1))],
        {"engagement.complained": True, "engagement.complained_at": at(1)},
        id="email_complaint",
    ),
    pytest.param(
        [make("consent_changed", at(1), event_id="c1", granted=True)],
        {
            "email_consent.state": ConsentState.granted,
            "email_consent.changed_at": at(1),
            "email_consent.event_id": "c1",
        },
        id="consent_changed",
    ),
    pytest.param(
        [make("page_view", at(1)), make("customer_erased", at(2))],
        {"kind": "tombstone", "customer_id": "cus-1", "erased_at": at(2)},
        id="customer_erased",
    ),
    pytest.param(
        [make("profile_attributes", at(1), event_id="a1")],
        {
            "time_zone": Stamped("Europe/Paris", at(1), "a1"),
            "locale": Stamped("fr-FR", at(1), "a1"),
        },
        id="profile_attributes",
    ),
]


@pytest.mark.parametrize(("events", "expected"), EVENT_CASES)
def test_event_type(events: list[InboundEvent], expected: dict[str, object]) -> None:
    state, steps = run(events)
    assert all(step.applied and step.reason is None for step in steps)
    for path, value in expected.items():
        assert dig(state, path) == value, path
    if isinstance(state, Profile):
        assert state.events_applied == len(events)
        assert state.recent_event_ids == tuple(event.event_id for event in events)
        assert state.first_seen == min(event.occurred_at for event in events)
        assert state.last_seen == max(event.occurred_at for event in events)


def test_every_event_type_has_a_scenario() -> None:
    covered = {str(param.id).split("-")[0] for param in EVENT_CASES}
    assert covered == set(ALL_TYPES)


def test_apply_never_mutates_its_inputs() -> None:
    profile = profile_of([make("cart_add", at(1)), make("email_sent", at(2))])
    before = profile.to_bytes()
    for kind in ALL_TYPES:
        event = make(kind, at(3))
        event_before = event.model_dump()
        apply(profile, event, CONFIG)
        assert event.model_dump() == event_before
    assert profile.to_bytes() == before


def test_an_event_of_another_customer_is_refused() -> None:
    profile = profile_of([make("page_view", at(1))])
    with pytest.raises(ValueError, match="cus-2"):
        apply(profile, make("page_view", at(2), customer_id="cus-2"), CONFIG)


# --- duplicates -----------------------------------------------------------------


def test_the_same_event_twice_applies_once() -> None:
    event = make("order_completed", at(1))
    first = apply(None, event, CONFIG)
    again = apply(first.profile, event, CONFIG)
    assert (again.applied, again.reason, again.outputs) == (False, "duplicate_event", ())
    assert again.profile is first.profile


def test_the_same_order_under_another_event_id_counts_once() -> None:
    first = apply(None, order("ord-1", at(1), "24.90", event_id="e1"), CONFIG)
    again = apply(first.profile, order("ord-1", at(1), "24.90", event_id="e2"), CONFIG)
    assert (again.applied, again.reason) == (False, "duplicate_order")
    assert again.profile is first.profile
    assert isinstance(again.profile, Profile)
    assert again.profile.purchases.revenue_total == D("24.90")
    assert again.profile.events_applied == 1


def test_the_dedupe_window_is_bounded_but_orders_are_deduped_for_ever() -> None:
    config = ProfileConfig(dedupe_window=2)
    view = make("page_view", at(1), event_id="v")
    bought = order("ord-1", at(2), "10", event_id="o")
    state = profile_of([view, bought, make("email_sent", at(3)), make("email_sent", at(4))], config)
    assert len(state.recent_event_ids) == 2
    # Older than the last 2 distinct events: no longer recognised as a duplicate...
    assert apply(state, view, config).applied
    # ...except an order, recognised by its order id.
    assert apply(state, bought, config).reason == "duplicate_order"


# --- arrival order --------------------------------------------------------------


def _mixed_stream() -> list[InboundEvent]:
    return [
        make("page_view", at(0), session_id=S),
        order("ord-1", at(10), "30.00"),
        order("ord-2", at(20, days=3), "12.50"),
        order("ord-3", at(30, days=3), "7.50"),
        make("email_sent", at(5, days=1)),
        make("email_sent", at(5, days=2)),
        make("email_delivered", at(6, days=2)),
        make("email_open", at(60, days=2)),
        make("email_click", at(61, days=2)),
        make("email_bounce", at(1, days=4), bounce_type="soft"),
        make("email_bounce", at(2, days=4), bounce_type="soft"),
        make("email_open", at(1.5, days=4)),
        make("email_unsubscribe", at(0, days=5)),
        make("consent_changed", at(0, days=1), event_id="cA", granted=True),
        make("consent_changed", at(0, days=1), event_id="cB", granted=False),
        make("profile_attributes", at(0, days=2), locale="de-DE", time_zone="Europe/Berlin"),
        make("profile_attributes", at(0, days=1), locale="fr-FR", time_zone="Europe/Paris"),
    ]


def _order_independent(profile: Profile) -> dict[str, object]:
    engagement = profile.engagement
    no_decay = {"sends_decayed": None, "opens_decayed": None, "clicks_decayed": None}
    return {
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "events_applied": profile.events_applied,
        "ids": sorted(profile.recent_event_ids),
        "purchases": profile.purchases,
        "engagement": engagement.model_copy(update=no_decay),
        "consent": profile.email_consent,
        "time_zone": profile.time_zone,
        "locale": profile.locale,
        "segment": (profile.segment, profile.segment_as_of),
    }


def test_reversed_arrival_gives_the_same_order_independent_fields() -> None:
    events = _mixed_stream()
    forward, backward = profile_of(events), profile_of(reversed(events))
    assert _order_independent(forward) == _order_independent(backward)
    assert forward.purchases.to_bytes() == backward.purchases.to_bytes()
    for name in ("sends_decayed", "opens_decayed", "clicks_decayed"):
        ours, theirs = getattr(forward.engagement, name), getattr(backward.engagement, name)
        assert ours.at == theirs.at
        assert ours.d7 == pytest.approx(theirs.d7, rel=1e-12)
        assert ours.d30 == pytest.approx(theirs.d30, rel=1e-12)
    # Spot checks of what "latest by event time" means.
    assert forward.email_consent.state is ConsentState.revoked  # same instant: event id cB > cA
    assert forward.locale is not None
    assert (forward.locale.value, forward.locale.at) == ("de-DE", at(0, days=2))
    assert forward.engagement.soft_bounce_streak == 1  # the open between the bounces ends the first


def test_a_late_delivery_ends_only_the_bounces_before_it() -> None:
    bounces = [make("email_bounce", at(m), bounce_type="soft") for m in (1, 2, 3, 4)]
    profile = profile_of([*bounces, make("email_delivered", at(2, days=0) + timedelta(seconds=1))])
    assert profile.engagement.soft_bounces == (at(3), at(4))
    later = profile_of(
        [make("email_open", at(10)), make("email_bounce", at(5), bounce_type="soft")]
    )
    assert later.engagement.soft_bounce_streak == 0  # a bounce before the open is not a streak


def test_the_soft_bounce_streak_is_bounded() -> None:
    config = ProfileConfig(max_soft_bounces=3)
    profile = profile_of(
        [make("email_bounce", at(m), bounce_type="soft") for m in range(6)], config
    )
    assert profile.engagement.soft_bounces == (at(3), at(4), at(5))


def test_decayed_counts_and_rates() -> None:
    profile = profile_of(
        [make("email_sent", at(0)), make("email_sent", at(0, days=7)), make("email_open", at(1))]
    )
    sends = profile.engagement.sends_decayed
    assert sends is not None
    assert sends.d7 == pytest.approx(1 + math.exp(-1))
    rates = engagement_rates(profile, at(0, days=7))
    # One open weighing exp(-(7 days - 1 min) / tau) over sends weighing 1 + exp(-1).
    assert 0 < rates.open_rate_7d < rates.open_rate_30d < 1
    assert rates.click_rate_7d == 0.0
    assert engagement_rates(profile_of([make("page_view")]), T0).open_rate_30d == 0.0


# --- erasure ---------------------------------------------------------------------


def test_erasure_leaves_a_tombstone_that_swallows_every_later_event() -> None:
    state, steps = run(
        [
            make("profile_attributes", at(1)),
            order("ord-1", at(2), "99.00"),
            make("customer_erased", at(3)),
        ]
    )
    assert state == Tombstone(customer_id="cus-1", erased_at=at(3))
    assert steps[-1].outputs == (ProfileErased(customer_id="cus-1", erased_at=at(3)),)
    assert set(orjson.loads(state.to_bytes())) == {"kind", "customer_id", "erased_at"}
    for kind in ALL_TYPES:
        stray = apply(state, make(kind, at(10)), CONFIG)
        assert (stray.profile, stray.applied, stray.reason, stray.outputs) == (
            state,
            False,
            "erased",
            (),
        )
        assert stray.profile is state


def test_erasing_an_unknown_customer_still_leaves_a_tombstone() -> None:
    step = apply(None, make("customer_erased", at(1)), CONFIG)
    assert step.applied
    assert step.profile == Tombstone(customer_id="cus-1", erased_at=at(1))
    assert apply(step.profile, make("page_view", at(2)), CONFIG).reason == "erased"


def test_stored_states_read_back_as_what_they_are() -> None:
    profile = profile_of([make("cart_add", at(1)), order("ord-1", at(2), "5", cart_id="cart-1")])
    tombstone = Tombstone(customer_id="cus-1", erased_at=at(3))
    assert state_from_bytes(profile.to_bytes()) == profile
    assert state_from_bytes(tombstone.to_bytes()) == tombstone
    assert Profile.from_bytes(profile.to_bytes()) == profile


# --- session ---------------------------------------------------------------------


def test_a_new_session_id_starts_a_new_session() -> None:
    profile = profile_of(
        [
            make("product_view", at(0), session_id="s1"),
            make("search", at(1), session_id="s1"),
            make("page_view", at(2), session_id="s2"),
        ]
    )
    assert profile.session is not None
    assert (profile.session.session_id, profile.session.started_at) == ("s2", at(2))
    assert (profile.session.products, profile.session.searches) == ((), ())


@pytest.mark.parametrize(
    ("gap_minutes", "new_session"),
    [pytest.param(29, False, id="within-gap"), pytest.param(31, True, id="after-gap")],
)
def test_without_session_ids_an_inactivity_gap_starts_a_new_session(
    gap_minutes: int, new_session: bool
) -> None:
    profile = profile_of(
        [
            make("category_view", at(0)),
            make("category_view", at(10), category="Bags"),
            make("page_view", at(10 + gap_minutes)),
        ]
    )
    assert profile.session is not None
    assert (profile.session.started_at == at(10 + gap_minutes)) is new_session
    assert profile.session.last_activity_at == at(10 + gap_minutes)
    assert len(profile.session.categories) == (0 if new_session else 2)


def test_events_older_than_the_session_start_leave_the_session_alone() -> None:
    current = profile_of([make("page_view", at(0), session_id="s1"), make("page_view", at(60))])
    late = apply(current, make("product_view", at(30), session_id="s0"), CONFIG).profile
    assert isinstance(late, Profile)
    assert late.session == current.session
    assert late.events_applied == current.events_applied + 1


def test_session_lists_are_most_recent_first_deduplicated_and_bounded() -> None:
    config = ProfileConfig(max_products_viewed=3)
    views = [
        make("product_view", at(m), session_id=S, product_id=product)
        for m, product in [(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "d")]
    ]
    late = make("product_view", at(3.5), session_id=S, product_id="e")
    searches = [
        make("search", at(m), session_id=S, query=q)
        for m, q in [(0, "Red"), (1, "blue"), (2, "red")]
    ]
    profile = profile_of([*views, late, *searches], config)
    assert profile.session is not None
    assert [seen.product_id for seen in profile.session.products] == ["d", "e", "c"]
    assert [seen.value for seen in profile.session.searches] == ["red", "blue"]


# --- cart ------------------------------------------------------------------------


def test_cart_lifecycle() -> None:
    add = make("cart_add", at(0), cart_id="k1", product_id="a", quantity=2, unit_price=D("5.00"))
    state, _ = run(
        [
            add,
            make("cart_add", at(1), cart_id="k1", product_id="b", unit_price=D("1.25"), quantity=4),
            make("cart_add", at(2), cart_id="k1", product_id="a", unit_price=D("4.50"), quantity=1),
            make("cart_remove", at(3), cart_id="k1", product_id="b", quantity=4),
            make("checkout_started", at(4), cart_id="k1"),
        ]
    )
    assert isinstance(state, Profile)
    assert state.cart is not None
    assert state.cart.lines == {"a": CartLine(3, D("4.50"))}
    assert state.cart.value == D("13.50")
    assert state.cart.checkout_started_at == at(4)

    bought = apply(state, order("ord-1", at(5), "13.50", cart_id="k1"), CONFIG).profile
    assert isinstance(bought, Profile)
    assert bought.cart is None
    assert bought.closed_cart_ids == ("k1",)
    # A late event of the bought cart does not reopen it.
    stray = apply(bought, make("cart_add", at(4.5), cart_id="k1"), CONFIG)
    assert stray.applied
    assert isinstance(stray.profile, Profile)
    assert stray.profile.cart is None


def test_an_event_for_another_cart_replaces_the_open_one_unless_it_is_stale() -> None:
    first = profile_of([make("cart_add", at(10), cart_id="k1")])
    replaced = apply(first, make("cart_add", at(11), cart_id="k2", product_id="z"), CONFIG).profile
    assert isinstance(replaced, Profile)
    assert replaced.cart is not None
    assert (replaced.cart.cart_id, list(replaced.cart.lines)) == ("k2", ["z"])
    stale = apply(first, make("cart_add", at(9), cart_id="k0"), CONFIG).profile
    assert isinstance(stale, Profile)
    assert stale.cart == first.cart


@pytest.mark.parametrize(
    ("order_cart", "order_minute", "closed"),
    [
        pytest.param("k1", 5, True, id="same-cart"),
        pytest.param("k9", 5, False, id="other-cart"),
        pytest.param(None, 5, True, id="no-cart-id"),
        pytest.param(None, 0.5, False, id="no-cart-id-older-than-the-cart"),
    ],
)
def test_which_orders_close_the_cart(
    order_cart: str | None, order_minute: float, closed: bool
) -> None:
    cart = profile_of([make("cart_add", at(1), cart_id="k1")])
    after = apply(cart, order("ord-1", at(order_minute), "39.98", cart_id=order_cart), CONFIG)
    assert isinstance(after.profile, Profile)
    assert (after.profile.cart is None) is closed


def test_removing_everything_leaves_an_empty_cart() -> None:
    profile = profile_of(
        [make("cart_add", at(0), quantity=1), make("cart_remove", at(1), quantity=5)]
    )
    assert profile.cart is not None
    assert (profile.cart.lines, profile.cart.value) == ({}, D(0))


# --- segments ----------------------------------------------------------------------


def test_segment_changes_are_output_when_the_stored_segment_changes() -> None:
    _, steps = run(
        [
            make("page_view", at(0)),  # new profile: prospect
            make("email_sent", at(1)),  # still prospect: no output
            order("ord-1", at(2), "20"),  # R5 F1: new_customer
            order("ord-2", at(0, days=20), "20"),  # R5 F2: potential_loyalist
            make("page_view", at(0, days=201)),  # 181 days after the last order: R2, F2
        ]
    )
    outputs = [step.outputs for step in steps]
    assert outputs == [
        (changed(None, Segment.prospect, at(0)),),
        (),
        (changed(Segment.prospect, Segment.new_customer, at(2)),),
        (changed(Segment.new_customer, Segment.potential_loyalist, at(0, days=20)),),
        (changed(Segment.potential_loyalist, Segment.hibernating, at(0, days=201)),),
    ]
    last = steps[-1].profile
    assert isinstance(last, Profile)
    assert (last.segment, last.segment_as_of) == (Segment.hibernating, at(0, days=201))


def changed(previous: Segment | None, current: Segment, as_of: datetime) -> SegmentChanged:
    return SegmentChanged(
        customer_id="cus-1", previous_segment=previous, segment=current, as_of=as_of
    )


def test_duplicates_and_tombstones_output_nothing() -> None:
    event = make("page_view", at(0))
    step = apply(None, event, CONFIG)
    assert step.outputs
    assert apply(step.profile, event, CONFIG).outputs == ()


# --- triggers and configuration ---------------------------------------------------------


def test_record_trigger_keeps_the_latest_time_per_trigger_type() -> None:
    profile = profile_of([make("page_view", at(0))])
    paris = ZoneInfo("Europe/Paris")
    once = record_trigger(profile, "abandoned_cart", at(10).astimezone(paris))
    assert once.last_trigger_at == {"abandoned_cart": at(10)}
    assert once.last_trigger_at["abandoned_cart"].tzinfo is UTC
    assert record_trigger(once, "abandoned_cart", at(5)) is once
    both = record_trigger(once, "browse_abandonment", at(20))
    assert both.last_trigger_at == {"abandoned_cart": at(10), "browse_abandonment": at(20)}
    assert profile.last_trigger_at == {}
    with pytest.raises(ValueError, match="aware"):
        record_trigger(profile, "x", datetime(2024, 5, 1))  # noqa: DTZ001 - on purpose


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"dedupe_window": 0}, id="dedupe_window"),
        pytest.param({"session_gap": timedelta(0)}, id="session_gap"),
        pytest.param({"max_products_viewed": 0}, id="max_products_viewed"),
        pytest.param({"max_soft_bounces": 0}, id="max_soft_bounces"),
    ],
)
def test_config_refuses_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        ProfileConfig(**overrides)
