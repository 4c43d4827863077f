"""The profile reducer: one pure step per event, ``apply(state, event, config) -> Step``.

The Faust shell calls :func:`apply` for every valid event of a customer,
stores ``step.profile`` (``table[customer_id] = step.profile``) and sends
``step.outputs``. Nothing here reads a clock or talks to Kafka: the same
events in the same order give the same profiles and outputs.

Fields that are sums, counts, minima, maxima or latest-by-event-time
(counts, revenue, purchase days, first and last times, engagement, consent,
attributes, the stored segment) come out the same whatever the arrival
order, decayed counts to float rounding. The session and the cart follow
arrival order where event time cannot settle it (see their modules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeAlias, assert_never, cast
from zoneinfo import ZoneInfo

from schemas.cart import CartAdd, CartRemove, CheckoutStarted, OrderCompleted
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.codec import InboundEvent
from schemas.customers import ConsentChanged, CustomerErased, ProfileAttributes
from schemas.email import (
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
)
from schemas.profiles import ProfileErased, SegmentChanged
from streams.core.attributes import fold_attribute, fold_consent
from streams.core.cart import fold_cart
from streams.core.engagement import EmailEvent, fold_email
from streams.core.profile import Profile, Tombstone
from streams.core.purchases import Purchases, fold_order
from streams.core.rfm import RfmConfig, Segment, rfm_scores_of, segment
from streams.core.session import SessionBounds, SiteEvent, fold_session

__all__ = ["Output", "ProfileConfig", "ProfileErased", "SegmentChanged", "Step", "apply"]

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """How profiles are kept: business zone, dedupe window, session and list bounds.

    ``business_tz`` decides which calendar day an order counts for; changing
    it does not move the days already stored.
    """

    business_tz: ZoneInfo = _UTC
    dedupe_window: int = 64
    session_gap: timedelta = timedelta(minutes=30)
    max_products_viewed: int = 20
    max_categories_viewed: int = 10
    max_search_terms: int = 10
    max_soft_bounces: int = 10
    max_closed_carts: int = 8
    rfm: RfmConfig = field(default_factory=RfmConfig)
    _session: SessionBounds = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dedupe_window < 1:
            raise ValueError("dedupe_window must be at least 1")
        if min(self.max_soft_bounces, self.max_closed_carts) < 1:
            raise ValueError("max_soft_bounces and max_closed_carts must be at least 1")
        bounds = SessionBounds(
            gap=self.session_gap,
            max_products=self.max_products_viewed,
            max_categories=self.max_categories_viewed,
            max_searches=self.max_search_terms,
        )
        object.__setattr__(self, "_session", bounds)


Output: TypeAlias = SegmentChanged | ProfileErased
"""What the shell sends on after a step: ``profiles.outbound`` messages, ready to send."""


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one event: the state to store, what to send, and whether it applied.

    ``applied`` is False when the event changed nothing; ``reason`` then says
    why: ``"duplicate_event"``, ``"duplicate_order"`` or ``"erased"``, and
    ``profile`` is the state passed in, unchanged.
    """

    profile: Profile | Tombstone
    outputs: tuple[Output, ...]
    applied: bool
    reason: str | None


_Folded: TypeAlias = (
    PageView
    | ProductView
    | CategoryView
    | Search
    | CartAdd
    | CartRemove
    | CheckoutStarted
    | OrderCompleted
    | EmailEvent
    | ConsentChanged
    | ProfileAttributes
)


# The folds return the fields an event changes rather than a new profile: ``apply``
# merges them with the bookkeeping fields (times, event ids, segment) into one
# copy (``FrozenModel.updated``), instead of copying the whole profile three times per event.
_Update: TypeAlias = dict[str, object]


def _apply_site(profile: Profile, event: SiteEvent, config: ProfileConfig) -> _Update:
    update: _Update = {"session": fold_session(profile.session, event, config._session)}
    if isinstance(event, CartAdd | CartRemove | CheckoutStarted):
        cart, closed = fold_cart(
            profile.cart, profile.closed_cart_ids, event, config.max_closed_carts
        )
        update["cart"], update["closed_cart_ids"] = cart, closed
    return update


def _apply_order(profile: Profile, event: OrderCompleted, config: ProfileConfig) -> _Update:
    cart, closed = fold_cart(profile.cart, profile.closed_cart_ids, event, config.max_closed_carts)
    return {
        "purchases": fold_order(profile.purchases, event, config.business_tz),
        "cart": cart,
        "closed_cart_ids": closed,
    }


def _apply_email(profile: Profile, event: EmailEvent, config: ProfileConfig) -> _Update:
    return {"engagement": fold_email(profile.engagement, event, config.max_soft_bounces)}


def _apply_consent(profile: Profile, event: ConsentChanged) -> _Update:
    return {"email_consent": fold_consent(profile.email_consent, event)}


def _apply_attributes(profile: Profile, event: ProfileAttributes) -> _Update:
    at, event_id = event.occurred_at, event.event_id
    return {
        "time_zone": fold_attribute(profile.time_zone, event.time_zone, at, event_id),
        "locale": fold_attribute(profile.locale, event.locale, at, event_id),
    }


def _fold(profile: Profile, event: _Folded, config: ProfileConfig) -> _Update:
    match event:
        case (
            PageView()
            | ProductView()
            | CategoryView()
            | Search()
            | CartAdd()
            | CartRemove()
            | CheckoutStarted()
        ):
            return _apply_site(profile, event, config)
        case OrderCompleted():
            return _apply_order(profile, event, config)
        case (
            EmailSent()
            | EmailDelivered()
            | EmailOpen()
            | EmailClick()
            | EmailBounce()
            | EmailUnsubscribe()
            | EmailComplaint()
        ):
            return _apply_email(profile, event, config)
        case ConsentChanged():
            return _apply_consent(profile, event)
        case ProfileAttributes():
            return _apply_attributes(profile, event)
        case _:
            assert_never(event)


def _touch(profile: Profile, event: InboundEvent, window: int) -> _Update:
    at = event.occurred_at
    ids = profile.recent_event_ids
    if len(ids) >= window:
        ids = ids[len(ids) - window + 1 :]
    return {
        "first_seen": min(profile.first_seen, at),
        "last_seen": max(profile.last_seen, at),
        "events_applied": profile.events_applied + 1,
        "recent_event_ids": (*ids, event.event_id),
    }


def _new_profile(event: InboundEvent) -> Profile:
    at = event.occurred_at
    return Profile(
        customer_id=event.customer_id,
        first_seen=at,
        last_seen=at,
        segment=Segment.prospect,
        segment_as_of=at,
    )


def apply(state: Profile | Tombstone | None, event: InboundEvent, config: ProfileConfig) -> Step:
    """Apply one event to a customer's stored state.

    Parameters
    ----------
    state
        What the table holds for ``event.customer_id``: a profile, a
        tombstone, or None for a customer not seen yet. Never modified.
    event
        A valid inbound event of that customer.
    config
        Business zone, dedupe window and bounds.

    Returns
    -------
    Step
        The state to store and the outputs to send. Checked in this order:
        a tombstone swallows every event (``"erased"``); an event id among the
        last ``dedupe_window`` applied is ``"duplicate_event"``; an order id
        already counted is ``"duplicate_order"``. ``customer_erased`` turns
        any state into a :class:`Tombstone` and outputs :class:`ProfileErased`.
        Otherwise the event is folded in and :class:`SegmentChanged` is
        output if the segment (as of the latest event time) changed.

    Raises
    ------
    ValueError
        If ``state`` belongs to another customer than ``event``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from schemas.clickstream import PageView
    >>> event = PageView(
    ...     event_id="e1", customer_id="c1", occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
    ...     url="https://shop.example/",
    ... )
    >>> step = apply(None, event, ProfileConfig())
    >>> step.applied, step.profile.events_applied, step.outputs[0].segment
    (True, 1, <Segment.prospect: 'prospect'>)
    >>> apply(step.profile, event, ProfileConfig()).reason
    'duplicate_event'

    """
    if isinstance(state, Tombstone):
        return Step(state, (), False, "erased")
    if state is not None and state.customer_id != event.customer_id:
        raise ValueError(
            f"event of customer {event.customer_id!r} applied to the profile of "
            f"{state.customer_id!r}"
        )
    if state is not None and event.event_id in state.recent_event_ids:
        return Step(state, (), False, "duplicate_event")
    if isinstance(event, CustomerErased):
        tombstone = Tombstone(customer_id=event.customer_id, erased_at=event.occurred_at)
        return Step(
            tombstone,
            (ProfileErased(customer_id=event.customer_id, erased_at=event.occurred_at),),
            True,
            None,
        )
    if (
        isinstance(event, OrderCompleted)
        and state is not None
        and state.purchases.has_order(event.order_id)
    ):
        return Step(state, (), False, "duplicate_order")

    base = state if state is not None else _new_profile(event)
    update = _fold(base, event, config)
    update.update(_touch(base, event, config.dedupe_window))
    last_seen = cast(datetime, update["last_seen"])
    # RFM reads the purchases (the fold's, if an order changed them) and the
    # latest event time, so it is scored before the one copy that stores it.
    purchases = cast(Purchases, update.get("purchases", base.purchases))
    current = segment(rfm_scores_of(purchases, last_seen, config.rfm))
    previous = None if state is None else state.segment
    update["segment"], update["segment_as_of"] = current, last_seen
    profile = base.updated(update)
    if current == previous:
        return Step(profile, (), True, None)
    changed = SegmentChanged(
        customer_id=profile.customer_id,
        previous_segment=previous,
        segment=current,
        as_of=profile.last_seen,
    )
    return Step(profile, (changed,), True, None)
