"""One customer's life in the simulated shop, as a small discrete-event simulation.

Each customer has an agenda (a heap of timed items): events ready to be
published, and actions (start a session, send a campaign email, open it,
erase the customer...) that run at their time, read the customer's state as
it is then, and schedule what follows. Popping the agenda therefore yields
the customer's events in time order, lazily, with only a session or two of
look-ahead in memory; :mod:`streams.simulator.shop` merges all customers.

Email follows the customer's responsiveness: responsive readers open and
click more, a click brings them to the shop, and opens and clicks nudge
their intent up a little (the nudge fades with a three-day half-life).
Sessions follow the customer's local day, busiest in the evening.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import math
import random
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Final, Literal

from schemas import (
    ConsentChanged,
    CustomerErased,
    EmailBounce,
    EmailClick,
    EmailComplaint,
    EmailDelivered,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
    InboundEvent,
    PageView,
    ProfileAttributes,
    TopicKind,
)
from streams.simulator.catalogue import CATEGORIES
from streams.simulator.config import SimulationConfig
from streams.simulator.events import SITE, Stamper
from streams.simulator.population import Customer
from streams.simulator.records import CustomerTruth, Record, SimulatedEvent
from streams.simulator.session import Cart, Shop, Visit, browse

__all__ = ["Shopper", "World"]

_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 24 * _HOUR_MS
_MS: Final = timedelta(milliseconds=1)
_NUDGE_HALF_LIFE_MS: Final = 3 * _DAY_MS

# Relative share of sessions starting in each local hour: quiet nights, a
# lunch bump, most activity between 18:00 and 23:00.
_DIURNAL: Final = (
    0.25, 0.12, 0.06, 0.04, 0.04, 0.08, 0.25, 0.55, 0.8, 0.9, 0.95, 1.0,
    1.25, 1.1, 0.95, 0.95, 1.05, 1.3, 1.7, 2.1, 2.4, 2.3, 1.7, 0.9,
)  # fmt: skip
_DIURNAL_CUM: Final = tuple(itertools.accumulate(_DIURNAL))


@dataclass(frozen=True, slots=True)
class World:
    """What every customer of a run shares."""

    config: SimulationConfig
    shop: Shop
    campaign_ms: tuple[int, ...]
    """When each campaign goes out (before each customer's few minutes of ESP jitter)."""
    end_ms: int
    """The end of the run in ms; nothing is emitted at or after it."""


Action = Callable[[int], None]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method; means here are small (a few sessions a day).
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass
class _State:
    consent: bool
    cart: Cart = field(default_factory=Cart)
    suppressed: bool = False
    erased: bool = False
    busy_until: int = -1
    nudge: float = 0.0
    nudge_at: int = 0
    sessions: int = 0
    last_message: tuple[str, str] | None = None


class Shopper:
    """One customer's agenda; :meth:`run` yields ``(ms, index, seq, record)`` in time order."""

    def __init__(
        self,
        world: World,
        customer: Customer,
        rng: random.Random,
        erase_at_ms: int | None,
    ) -> None:
        self.world, self.customer, self.rng = world, customer, rng
        self.stamp = Stamper(rng, customer.customer_id, world.config.start)
        self.zone = zoneinfo.ZoneInfo(customer.time_zone)
        self.state = _State(consent=customer.email_consent)
        self.erase_at_ms = erase_at_ms
        self.agenda: list[tuple[int, int, Record | Action]] = []
        self.seq = itertools.count()

    # --- the agenda ---------------------------------------------------------

    def run(self) -> Iterator[tuple[int, int, int, Record]]:
        """Play the customer's agenda out, yielding records in time order."""
        self._begin()
        index, agenda = self.customer.index, self.agenda
        while agenda:
            at, seq, item = heapq.heappop(agenda)
            if callable(item):
                item(at)
            else:
                yield at, index, seq, item

    def _push(self, at: int, item: Record | Action) -> None:
        if 0 <= at < self.world.end_ms:
            heapq.heappush(self.agenda, (at, next(self.seq), item))

    def _emit(self, at: int, kind: TopicKind, event: InboundEvent) -> None:
        self._push(at, SimulatedEvent(kind, event))

    # --- the customer's life --------------------------------------------------

    def _begin(self) -> None:
        customer, rng, world = self.customer, self.rng, self.world
        erased_at = (
            None if self.erase_at_ms is None else world.config.start + self.erase_at_ms * _MS
        )
        self._push(
            0,
            CustomerTruth(
                customer_id=customer.customer_id,
                intent=customer.intent,
                price_sensitivity=customer.price_sensitivity,
                responsiveness=customer.responsiveness,
                time_zone=customer.time_zone,
                locale=customer.locale,
                email_consent=customer.email_consent,
                erased_at=erased_at,
            ),
        )
        # The shop syncs what it knows about each customer as the run begins.
        self._push(rng.randrange(60_000), self._sync)
        local = world.config.start.astimezone(self.zone)
        midnight = datetime.combine(local.date(), time(0), tzinfo=self.zone)
        self._plan_day(0, self._ms_of(midnight))
        self._schedule_campaign(0)
        per_day = world.config.rates.consent_change_per_day
        if per_day > 0:
            self._push(int(rng.expovariate(per_day) * _DAY_MS), self._consent_change)
        if self.erase_at_ms is not None:
            self._push(self.erase_at_ms, self._erase)

    def _sync(self, at: int) -> None:
        customer = self.customer
        attributes = ProfileAttributes(
            **self.stamp.envelope(at), time_zone=customer.time_zone, locale=customer.locale
        )
        self._emit(at, TopicKind.customers, attributes)
        consent = ConsentChanged(
            **self.stamp.envelope(at + 1),
            channel="email",
            granted=customer.email_consent,
            source="initial_sync",
        )
        self._emit(at + 1, TopicKind.customers, consent)

    def _schedule_campaign(self, number: int) -> None:
        # One campaign at a time on the agenda, so a year-long run stays small.
        if number < len(self.world.campaign_ms):
            at = self.world.campaign_ms[number] + self.rng.randrange(30 * 60_000)
            self._push(at, functools.partial(self._campaign, number=number))

    def _ms_of(self, moment: datetime) -> int:
        return (moment - self.world.config.start) // _MS

    def _intent(self, at: int) -> float:
        state = self.state
        fade = math.pow(0.5, (at - state.nudge_at) / _NUDGE_HALF_LIFE_MS)
        return min(1.0, self.customer.intent + state.nudge * fade)

    def _nudge(self, at: int, amount: float) -> None:
        state = self.state
        state.nudge = self._intent(at) - self.customer.intent + amount
        state.nudge_at = at

    def _plan_day(self, at: int, day_start: int) -> None:
        """Schedule the sessions of the local day starting at ``day_start``, then the next day."""
        rng = self.rng
        base = self.world.config.rates.sessions_per_day
        mean = base * (0.25 + 3.75 * self._intent(at))
        for _ in range(_poisson(rng, mean)):
            hour = bisect.bisect(_DIURNAL_CUM, rng.random() * _DIURNAL_CUM[-1])
            start = day_start + hour * _HOUR_MS + rng.randrange(_HOUR_MS)
            if start >= at:
                self._push(start, self._organic_session)
        local = (self.world.config.start + day_start * _MS).astimezone(self.zone)
        tomorrow = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.zone)
        next_start = self._ms_of(tomorrow)
        self._push(next_start, functools.partial(self._plan_day, day_start=next_start))

    def _organic_session(self, at: int) -> None:
        self._session(at, "organic")

    def _session(
        self, at: int, source: Literal["organic", "email"], category: str | None = None
    ) -> None:
        state = self.state
        if state.erased:
            return
        if at <= state.busy_until:
            if source == "organic":  # come back a little later instead
                self._push(
                    state.busy_until + 600_000 + self.rng.randrange(5_400_000),
                    self._organic_session,
                )
            return  # an email click while browsing continues the same session
        state.sessions += 1
        visit = Visit(
            session_id=f"sess-{self.customer.index:06d}-{state.sessions:04d}",
            start_ms=at,
            intent=self._intent(at),
            consented=state.consent,
            source=source,
            category=category,
        )
        result = browse(self.world.shop, self.customer, visit, state.cart, self.stamp)
        if result.end_ms >= self.world.end_ms:
            return  # the run ends first: the session never happened
        self._push(at, result.truth)
        for event_at, event in result.events:
            self._push(event_at, event)
        state.cart, state.busy_until = result.cart, result.end_ms
        if result.opted_in:  # at checkout, the session's last event
            self._push(result.end_ms, self._opted_in)

    def _opted_in(self, at: int) -> None:
        self.state.consent = True

    def _campaign(self, at: int, number: int) -> None:
        state, rng, resp = self.state, self.rng, self.customer.responsiveness
        self._schedule_campaign(number + 1)
        if state.erased or state.suppressed or not state.consent:
            return
        ids = (f"newsletter-{number:03d}", f"msg-{self.customer.index:06d}-{number:03d}")
        state.last_message = ids
        self._mail(at, EmailSent, ids)
        roll = rng.random()
        if roll < 0.004:
            state.suppressed = True
            self._mail(at + 2_000 + rng.randrange(30_000), EmailBounce, ids, bounce_type="hard")
            return
        if roll < 0.02:
            self._mail(at + 60_000 + rng.randrange(3_600_000), EmailBounce, ids, bounce_type="soft")
            return
        self._mail(at + 1_000 + rng.randrange(20_000), EmailDelivered, ids)
        if rng.random() < 0.001 + 0.004 * (1 - resp):
            later = at + int(rng.lognormvariate(math.log(6 * _HOUR_MS), 1.0))
            self._push(later, functools.partial(self._complain, ids=ids))
        elif rng.random() < 0.08 + 0.6 * resp:
            later = at + 30_000 + int(rng.lognormvariate(math.log(2 * _HOUR_MS), 1.2))
            category = CATEGORIES[number % len(CATEGORIES)][0]
            self._push(later, functools.partial(self._open, ids=ids, category=category))

    def _mail(
        self, at: int, cls: Callable[..., InboundEvent], ids: tuple[str, str], **fields: object
    ) -> None:
        campaign_id, message_id = ids
        event = cls(
            **self.stamp.envelope(at), campaign_id=campaign_id, message_id=message_id, **fields
        )
        self._emit(at, TopicKind.email, event)

    def _open(self, at: int, ids: tuple[str, str], category: str) -> None:
        rng, resp = self.rng, self.customer.responsiveness
        self._mail(at, EmailOpen, ids)
        self._nudge(at, 0.02 * resp)
        if rng.random() < 0.05 + 0.45 * resp:
            self._push(
                at + 5_000 + rng.randrange(120_000),
                functools.partial(self._click, ids=ids, category=category),
            )
        if rng.random() < 0.004 + 0.03 * (1 - resp):
            self._push(
                at + 10_000 + rng.randrange(300_000), functools.partial(self._unsubscribe, ids=ids)
            )

    def _click(self, at: int, ids: tuple[str, str], category: str) -> None:
        url = f"{SITE}/c/{category}?utm_source=email&utm_campaign={ids[0]}"
        self._mail(at, EmailClick, ids, url=url)
        self._nudge(at, 0.08 * self.customer.responsiveness)
        self._push(
            at + 1_000 + self.rng.randrange(8_000),
            functools.partial(self._session, source="email", category=category),
        )

    def _unsubscribe(self, at: int, ids: tuple[str, str]) -> None:
        self._mail(at, EmailUnsubscribe, ids)
        if self.state.consent and not self.state.erased:
            self._withdraw(at + 1_000 + self.rng.randrange(4_000), "email_unsubscribe")

    def _complain(self, at: int, ids: tuple[str, str]) -> None:
        self._mail(at, EmailComplaint, ids)
        self.state.suppressed = True

    def _withdraw(self, at: int, source: str) -> None:
        self.state.consent = False
        event = ConsentChanged(
            **self.stamp.envelope(at), channel="email", granted=False, source=source
        )
        self._emit(at, TopicKind.customers, event)

    def _consent_change(self, at: int) -> None:
        state = self.state
        if state.erased:
            return
        if state.consent:
            self._withdraw(at, "preference_center")
            return
        state.consent = True
        event = ConsentChanged(
            **self.stamp.envelope(at), channel="email", granted=True, source="newsletter_signup"
        )
        self._emit(at, TopicKind.customers, event)

    def _erase(self, at: int) -> None:
        """Erase the customer; a few stray events may still arrive afterwards, as in real life.

        Trackers keep a cookie for a while and the ESP still relays opens of
        mail already delivered, so Nudge must cope with events about someone
        it was told to forget.
        """
        state, rng = self.state, self.rng
        state.erased = True
        self._emit(at, TopicKind.customers, CustomerErased(**self.stamp.envelope(at)))
        if rng.random() >= 0.6:
            return
        for _ in range(rng.randint(1, 3)):
            later = at + 20_000 + rng.randrange(3 * _HOUR_MS)
            if state.last_message is not None and rng.random() < 0.4:
                self._mail(later, EmailOpen, state.last_message)
            else:
                page = PageView(**self.stamp.envelope(later), url=f"{SITE}/", title="Home")
                self._emit(later, TopicKind.clickstream, page)
