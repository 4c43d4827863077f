"""The browsing session: what the shopper is looking at right now.

A session is the run of on-site events (clickstream, cart changes, checkout)
sharing a ``session_id``; without one, a run with no gap longer than the
inactivity gap. An event with another ``session_id`` than the current one, or
without one after the gap, starts a new session. Events older than the
current session's start leave it alone: they belong to a session that is
over (they still count everywhere else in the profile).

Orders are not session activity: the order service may report them long
after, or without, a browsing session.

The lists are bounded, most recent first (by event time, so a late event of
the current session lands in its place) and deduplicated, keeping the latest
sighting. Search terms are deduplicated ignoring case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, TypeAlias, TypeVar

from schemas.cart import CartAdd, CartRemove, CheckoutStarted
from schemas.clickstream import CategoryView, PageView, ProductView, Search
from schemas.common import UtcDatetime
from streams.core.frozen import FrozenModel

__all__ = ["ProductSeen", "Seen", "Session", "SessionBounds", "SiteEvent", "fold_session"]

SiteEvent: TypeAlias = (
    PageView | ProductView | CategoryView | Search | CartAdd | CartRemove | CheckoutStarted
)
"""The events that are session activity."""

_T = TypeVar("_T")


class ProductSeen(NamedTuple):
    """A product the shopper looked at, at the price shown."""

    product_id: str
    price: Decimal
    currency: str
    category: str | None
    viewed_at: UtcDatetime


class Seen(NamedTuple):
    """A category or search term, with when it was last seen."""

    value: str
    at: UtcDatetime


class Session(FrozenModel):
    """The current browsing session; lists are most recent first."""

    session_id: str | None
    started_at: UtcDatetime
    last_activity_at: UtcDatetime
    products: tuple[ProductSeen, ...] = ()
    categories: tuple[Seen, ...] = ()
    searches: tuple[Seen, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionBounds:
    """The inactivity gap and the list bounds of a session."""

    gap: timedelta = timedelta(minutes=30)
    max_products: int = 20
    max_categories: int = 10
    max_searches: int = 10

    def __post_init__(self) -> None:
        if self.gap <= timedelta(0):
            raise ValueError("the session gap must be positive")
        if min(self.max_products, self.max_categories, self.max_searches) < 1:
            raise ValueError("session list bounds must be at least 1")


def _remember(
    items: tuple[_T, ...],
    item: _T,
    key: Callable[[_T], str],
    when: Callable[[_T], datetime],
    bound: int,
) -> tuple[_T, ...]:
    # Insert by time (most recent first), dropping an older sighting of the
    # same key; a sighting no newer than the one kept changes nothing.
    new_key, at = key(item), when(item)
    kept: list[_T] = []
    for old in items:
        if key(old) == new_key:
            if when(old) >= at:
                return items
            continue
        kept.append(old)
    where = 0
    while where < len(kept) and when(kept[where]) > at:
        where += 1
    kept.insert(where, item)
    return tuple(kept[:bound])


def _product_key(seen: ProductSeen) -> str:
    return seen.product_id


def _viewed_at(seen: ProductSeen) -> datetime:
    return seen.viewed_at


def _exact(seen: Seen) -> str:
    return seen.value


def _folded(seen: Seen) -> str:
    return seen.value.casefold()


def _seen_at(seen: Seen) -> datetime:
    return seen.at


def _starts_new(session: Session, event: SiteEvent, gap: timedelta) -> bool:
    if event.session_id is not None:
        return event.session_id != session.session_id
    return event.occurred_at - session.last_activity_at > gap


def fold_session(session: Session | None, event: SiteEvent, bounds: SessionBounds) -> Session:
    """Fold one on-site event into the current session (or start the next one)."""
    at = event.occurred_at
    if session is not None and at < session.started_at:
        return session
    # The changes are gathered first and applied in one copy of the session.
    update: dict[str, object] = {}
    if session is None or _starts_new(session, event, bounds.gap):
        session = Session(session_id=event.session_id, started_at=at, last_activity_at=at)
    elif at > session.last_activity_at:
        update["last_activity_at"] = at
    match event:
        case ProductView():
            seen = ProductSeen(event.product_id, event.price, event.currency, event.category, at)
            update["products"] = _remember(
                session.products, seen, _product_key, _viewed_at, bounds.max_products
            )
        case CategoryView():
            update["categories"] = _remember(
                session.categories,
                Seen(event.category, at),
                _exact,
                _seen_at,
                bounds.max_categories,
            )
        case Search():
            update["searches"] = _remember(
                session.searches, Seen(event.query, at), _folded, _seen_at, bounds.max_searches
            )
    return session.updated(update) if update else session
