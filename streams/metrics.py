"""The worker's Prometheus metrics, built against a registry passed in.

One object holds every metric so agents receive what they count as an
argument, and each test can build a fresh ``CollectorRegistry`` instead of
fighting over module-level globals.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

# Per-event work is tens of microseconds; a slow event is a millisecond or more.
PROCESSING_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


@dataclass(frozen=True)
class Metrics:
    """Everything a Nudge worker counts."""

    registry: CollectorRegistry
    events_consumed: Counter
    events_deadlettered: Counter
    events_skipped: Counter
    event_processing: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register Nudge's metrics on ``registry``."""
        return cls(
            registry=registry,
            events_consumed=Counter(
                "nudge_events_consumed_total",
                "Inbound events decoded, validated and applied, by topic kind and event type.",
                ["topic", "type"],
                registry=registry,
            ),
            events_deadlettered=Counter(
                "nudge_events_deadlettered_total",
                "Inbound messages sent to the dead-letter topic, by topic kind and reason.",
                ["topic", "reason"],
                registry=registry,
            ),
            events_skipped=Counter(
                "nudge_events_skipped_total",
                "Valid events that changed nothing (duplicate event or order, erased customer).",
                ["topic", "reason"],
                registry=registry,
            ),
            event_processing=Histogram(
                "nudge_event_processing_seconds",
                "Wall time to decode, validate and apply one inbound message.",
                ["topic"],
                buckets=PROCESSING_BUCKETS,
                registry=registry,
            ),
        )
