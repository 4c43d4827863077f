"""A simulated shop that publishes realistic events, with the truth behind them.

Nudge learns purchase intent from behaviour; to test that it does, the
simulator draws customers with a known latent intent and lets it drive what
they do (visits, product views, carts, orders, email engagement). Everything
but :mod:`streams.simulator.publish` is pure and deterministic: time is
simulated and passed along, randomness comes from the seed, so the same
:class:`SimulationConfig` always gives the same bytes.
"""

from streams.simulator.config import Rates, SimulationConfig
from streams.simulator.records import (
    CustomerTruth,
    Record,
    SessionTruth,
    SimulatedEvent,
    encode_event_line,
    truth_line,
)
from streams.simulator.shop import events, generate

__all__ = [
    "CustomerTruth",
    "Rates",
    "Record",
    "SessionTruth",
    "SimulatedEvent",
    "SimulationConfig",
    "encode_event_line",
    "events",
    "generate",
    "truth_line",
]
