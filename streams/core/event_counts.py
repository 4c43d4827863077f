"""The per-customer event count: the simplest state that proves ingestion.

Each valid event adds one to its customer's count. The profile reducer
replaces this once profiles exist; until then it is what the worker keeps,
and what the ingestion tests compare against what they published.
"""

from __future__ import annotations

from schemas import InboundEvent


def apply(count: int, event: InboundEvent) -> int:
    """Return the customer's count after ``event``."""
    del event  # every valid event counts the same
    return count + 1
