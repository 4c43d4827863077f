"""What a simulation is asked to produce, checked before anything is generated.

A config is a frozen value so that it can be logged, compared and replayed:
the same config always gives the same events, byte for byte. Every number is
bounded, because a typo such as ``customers=10**9`` should fail at once
instead of filling a disk or a topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from schemas.common import ISO_4217_CODES

__all__ = ["MAX_CUSTOMERS", "MAX_DURATION", "Rates", "SimulationConfig"]

MAX_CUSTOMERS: Final = 200_000
"""Most simulated customers: each one keeps its own state in memory (about 5 KB)."""

MAX_DURATION: Final = timedelta(days=366)
"""Longest simulated period."""

DEFAULT_START: Final = datetime(2026, 11, 2, tzinfo=UTC)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class Rates:
    """How often things happen, before intent and time of day shape them.

    ``sessions_per_day`` is the visit rate of a customer of typical intent
    (0.2); a customer's own rate scales from a quarter of it (no intent) to
    about four times it (full intent).
    """

    sessions_per_day: float = 0.35
    campaigns_per_week: float = 2.0
    consent_change_per_day: float = 0.002

    def __post_init__(self) -> None:
        _check(0 < self.sessions_per_day <= 24, "sessions_per_day must be in (0, 24]")
        _check(0 <= self.campaigns_per_week <= 14, "campaigns_per_week must be in [0, 14]")
        _check(
            0 <= self.consent_change_per_day <= 1,
            "consent_change_per_day must be in [0, 1]",
        )


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """A simulated shop: who shops, for how long, from when, with which seed.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> config = SimulationConfig(seed=7, customers=100, duration=timedelta(days=2))
    >>> config.end - config.start
    datetime.timedelta(days=2)
    >>> SimulationConfig(customers=0)
    Traceback (most recent call last):
    ...
    ValueError: customers must be in [1, 200000]

    """

    seed: int = 0
    customers: int = 1_000
    start: datetime = DEFAULT_START
    duration: timedelta = timedelta(days=7)
    rates: Rates = field(default_factory=Rates)
    erasure_share: float = 0.01
    catalogue_size: int = 400
    currency: str = "EUR"

    def __post_init__(self) -> None:
        _check(0 <= self.seed < 2**63, "seed must be in [0, 2**63)")
        _check(1 <= self.customers <= MAX_CUSTOMERS, f"customers must be in [1, {MAX_CUSTOMERS}]")
        _check(
            self.start.tzinfo is not None and self.start.utcoffset() is not None,
            "start must be timezone-aware",
        )
        _check(
            timedelta(minutes=1) <= self.duration <= MAX_DURATION,
            "duration must be between one minute and 366 days",
        )
        _check(0 <= self.erasure_share <= 0.5, "erasure_share must be in [0, 0.5]")
        _check(10 <= self.catalogue_size <= 100_000, "catalogue_size must be in [10, 100000]")
        _check(self.currency in ISO_4217_CODES, f"unknown currency {self.currency!r}")
        # One canonical form: the same instant in another offset is the same run.
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def end(self) -> datetime:
        """The first instant after the simulated period; nothing happens at or after it."""
        return self.start + self.duration

    @property
    def duration_ms(self) -> int:
        """The simulated period in whole milliseconds, the simulator's unit of time."""
        return self.duration // timedelta(milliseconds=1)
