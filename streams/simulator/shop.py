"""The simulated shop: every customer's events, merged into one time-ordered stream.

:func:`generate` is pure and deterministic: no clock, no Kafka, no global
random state. Time is simulated (``config.start`` plus integer milliseconds)
and every random draw comes from streams seeded by ``config.seed``, so the
same config gives the same records, byte for byte, which is what makes a
simulated run a reproducible test of the engine.

Customers are independent processes (:mod:`streams.simulator.shopper`)
merged by time, so memory grows with the number of customers (a few KB
each), not with the number of events.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator

from streams.simulator.catalogue import build_catalogue
from streams.simulator.config import SimulationConfig
from streams.simulator.population import customer_rng, draw_customer
from streams.simulator.records import Record, SimulatedEvent
from streams.simulator.session import Shop
from streams.simulator.shopper import Shopper, World

__all__ = ["erasure_plan", "events", "generate"]

_DAY_MS = 86_400_000
_FIRST_CAMPAIGN_MS = 8 * 3_600_000  # the first newsletter leaves 8 hours into the run


def erasure_plan(config: SimulationConfig) -> dict[int, int]:
    """Which customers ask to be erased, and when (ms into the run).

    Exactly ``round(erasure_share * customers)`` of them, at a time between 10%
    and 80% of the run, so the stray events that follow an erasure fit in it.
    """
    rng = random.Random(f"nudge-sim:{config.seed}:erasures")  # noqa: S311 - simulation
    count = round(config.erasure_share * config.customers)
    chosen = sorted(rng.sample(range(config.customers), count))
    span = config.duration_ms
    return {index: int(span * rng.uniform(0.1, 0.8)) for index in chosen}


def _campaigns(config: SimulationConfig) -> tuple[int, ...]:
    per_week = config.rates.campaigns_per_week
    if per_week == 0:
        return ()
    every = int(7 * _DAY_MS / per_week)
    return tuple(range(_FIRST_CAMPAIGN_MS, config.duration_ms, every))


def generate(config: SimulationConfig) -> Iterator[Record]:
    """Yield a simulated shop's events and truth records in event-time order.

    Truth records (:class:`~streams.simulator.records.CustomerTruth` at the
    start, :class:`~streams.simulator.records.SessionTruth` as each session
    starts) come in the same stream; filter with ``isinstance`` or use
    :func:`events`. Everything happens in ``[config.start, config.end)``.

    Examples
    --------
    >>> from datetime import timedelta
    >>> config = SimulationConfig(seed=1, customers=3, duration=timedelta(hours=6))
    >>> first = next(events(config))
    >>> first.kind, first.event.type
    (<TopicKind.customers: 'customers'>, 'profile_attributes')

    """
    world = World(
        config=config,
        shop=Shop(build_catalogue(config.seed, config.catalogue_size), config.currency),
        campaign_ms=_campaigns(config),
        end_ms=config.duration_ms,
    )
    erasures = erasure_plan(config)
    agendas = []
    for index in range(config.customers):
        rng = customer_rng(config.seed, index)
        customer = draw_customer(rng, index)
        agendas.append(Shopper(world, customer, rng, erasures.get(index)).run())
    # (ms, customer index, seq) is unique, so records themselves are never compared.
    for _at, _index, _seq, record in heapq.merge(*agendas):
        yield record


def events(config: SimulationConfig) -> Iterator[SimulatedEvent]:
    """Only the events of :func:`generate`, without the truth records."""
    for record in generate(config):
        if isinstance(record, SimulatedEvent):
            yield record
