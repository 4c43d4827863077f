"""Worker settings for tests that replay history and compare outputs exactly."""

from __future__ import annotations

EVENT_TIME = {
    # Only event time fires deadlines: a run decides the same whatever the wall clock does.
    "NUDGE_WALL_CLOCK": "false",
    # The default, stated: ordered sending (one topic, or InOrder runs) removes replay skew.
    "NUDGE_ALLOWED_LATENESS_SECONDS": "300",
    # Score with the cold-start prior throughout: a snapshot lands at a moment that
    # depends on wall time, so a learned model would make two runs differ.
    "NUDGE_MIN_POSITIVES": "1000000000",
}
"""Settings under which a worker's outputs depend only on each partition's event order."""
