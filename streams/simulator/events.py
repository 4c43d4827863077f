"""Stamping simulated events: ids from the customer's random stream, times from the run start.

Simulated time is an integer number of milliseconds since the start of the
run, so ordering is exact and the same seed gives the same timestamps on any
machine. Event ids are version-4 UUIDs made from random bits of the
customer's own stream: unique in practice, and reproducible.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any, Final

__all__ = ["SITE", "Stamper"]

SITE: Final = "https://shop.example"
"""The simulated shop's address; every URL it publishes starts with it."""

_MS: Final = timedelta(milliseconds=1)


class Stamper:
    """Builds the envelope fields of one customer's events."""

    __slots__ = ("customer_id", "rng", "start")

    def __init__(self, rng: random.Random, customer_id: str, start: datetime) -> None:
        self.rng = rng
        self.customer_id = customer_id
        self.start = start

    def envelope(self, at_ms: int, session_id: str | None = None) -> dict[str, Any]:
        """Build the fields every event carries, for an event at ``at_ms`` into the run."""
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "customer_id": self.customer_id,
            "occurred_at": self.start + at_ms * _MS,
            "session_id": session_id,
        }
