"""Publishing many events from the command line: a Kafka sink, pacing and progress.

``nudge simulate`` and ``nudge replay`` share these, so both key every event
by its ``customer_id`` (co-partitioning depends on it), route it to the topic
settings name for its kind, pace it the same way and report the same way.
The clock and ``sleep`` are arguments, so pacing is tested without waiting.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Protocol

from schemas import TopicKind
from streams.kafka_security import kafka_python_options
from streams.settings import Settings

__all__ = ["DeliveryError", "EventSink", "KafkaSink", "Pacer", "Progress", "Tally", "summary_text"]


class EventSink(Protocol):
    """Where encoded events go: a Kafka producer, a file, a list in a test."""

    def send(self, kind: TopicKind, key: bytes, value: bytes) -> None:
        """Queue one event of ``kind`` keyed by ``key``."""

    def close(self) -> None:
        """Deliver everything queued; raise :class:`DeliveryError` if some was not."""


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge some events; the message says how many and why."""


class KafkaSink:
    """Sends to the inbound topics named in settings, one producer, acks from all replicas.

    ``ordered`` sends every event to the replay topic instead, so a worker
    applies each partition's events in the order they are sent.
    """

    def __init__(
        self, settings: Settings, *, client_id: str = "nudge-publisher", ordered: bool = False
    ) -> None:
        # kafka-python warns on import under Python 3.11 about its own internals.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka import KafkaProducer
            from kafka.errors import KafkaError

        self.topics = self.topics_for(settings, ordered=ordered)
        self.failed = 0
        self.first_error: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=[s.strip() for s in settings.bootstrap_servers.split(",")],
                client_id=client_id,
                acks="all",
                linger_ms=20,
                max_request_size=settings.inbound_max_message_bytes,
                **kafka_python_options(settings),
            )
        except KafkaError as exc:
            raise DeliveryError(
                f"cannot publish to Kafka at {settings.bootstrap_servers}: {exc!r}"
            ) from exc

    @staticmethod
    def topics_for(settings: Settings, *, ordered: bool) -> Mapping[str, str]:
        """Map each event kind to the topic it is sent to."""
        inbound = settings.inbound_topics()
        return dict.fromkeys(inbound, settings.topic_replay) if ordered else inbound

    def send(self, kind: TopicKind, key: bytes, value: bytes) -> None:
        """Queue one event on its kind's topic; failures are counted, not raised here."""
        future = self._producer.send(self.topics[kind.value], key=key, value=value)
        future.add_errback(self._failed)

    def _failed(self, error: BaseException) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = error

    def close(self) -> None:
        """Flush, close, and raise if any event was not acknowledged."""
        try:
            self._producer.flush(timeout=60)
        finally:
            self._producer.close(timeout=30)
        if self.failed:
            raise DeliveryError(
                f"{self.failed} events were not acknowledged by Kafka; first error: "
                f"{self.first_error!r}"
            )


@dataclass
class Pacer:
    """Waits between events: as fast as possible, at a rate, or at a time scale.

    ``rate`` is events per second of wall time. ``speed`` replays event time
    ``speed`` times faster than it happened (1 is real time), keeping the gaps
    between ``occurred_at``; an event older than the one before it is sent at
    once. With neither, nothing waits.
    """

    rate: float | None = None
    speed: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _started: float | None = field(default=None, init=False)
    _first_event: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate is not None and self.speed is not None:
            raise ValueError("give a rate or a speed, not both")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.speed is not None and self.speed <= 0:
            raise ValueError("speed must be positive")

    def wait(self, sent: int, occurred_at: datetime, deadline: float | None = None) -> bool:
        """Wait until the event after ``sent`` others, which happened at ``occurred_at``, is due.

        Return False instead, once ``deadline`` (a ``clock`` reading) has come,
        if the event is due after it: a bounded run never oversleeps its bound.
        """
        if self.rate is None and self.speed is None:
            return True
        if self._started is None or self._first_event is None:
            self._started, self._first_event = self.clock(), occurred_at
            return True
        if self.rate is not None:
            due = self._started + sent / self.rate
        else:
            assert self.speed is not None
            due = self._started + (occurred_at - self._first_event).total_seconds() / self.speed
        if deadline is not None and due > deadline:
            self.sleep(max(deadline - self.clock(), 0.0))
            return False
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)
        return True


@dataclass
class Tally:
    """What was published, per kind, and what was not."""

    published: Counter[TopicKind] = field(default_factory=Counter)
    invalid: int = 0

    @property
    def total(self) -> int:
        """Events published, all kinds together."""
        return sum(self.published.values())

    def by_kind(self) -> dict[str, int]:
        """Count what was published per kind name, every kind present (zeros included)."""
        return {kind.value: self.published.get(kind, 0) for kind in TopicKind}


@dataclass
class Progress:
    """A one-line progress counter on stderr, rewritten in place on a terminal.

    Off a terminal (a log file, a CI job) it prints a plain line at most every
    ``log_every`` seconds instead, so logs stay readable.
    """

    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    enabled: bool = True
    clock: Callable[[], float] = time.monotonic
    log_every: float = 5.0
    _started: float = field(default=0.0, init=False)
    _last: float = field(default=0.0, init=False)
    _tty: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._started = self._last = self.clock()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, tally: Tally, *, force: bool = False) -> None:
        """Show the counts if enough time passed since the last update (or ``force``)."""
        if not self.enabled:
            return
        now = self.clock()
        every = 0.2 if self._tty else self.log_every
        if not force and now - self._last < every:
            return
        self._last = now
        elapsed = max(now - self._started, 1e-9)
        line = f"{tally.total} events ({tally.total / elapsed:,.0f}/s)"
        if tally.invalid:
            line += f", {tally.invalid} invalid"
        self.stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self.stream.flush()

    def clear_line(self) -> None:
        """Erase the counter on a terminal, so another message can take its line."""
        if self.enabled and self._tty:
            self.stream.write("\r\x1b[K")

    def done(self, tally: Tally) -> None:
        """Print the final count and end the line."""
        self.update(tally, force=True)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    @property
    def elapsed(self) -> float:
        """Seconds since the progress started."""
        return self.clock() - self._started


def summary_text(tally: Tally, elapsed: float, destination: str, extra: dict[str, Any]) -> str:
    """Describe a finished run for people: totals, rate, and counts per kind."""
    rate = tally.total / elapsed if elapsed > 0 else float(tally.total)
    lines = [f"published {tally.total} events in {elapsed:.1f} s ({rate:,.0f}/s) to {destination}"]
    lines += [f"  {kind:<12} {count:>10}" for kind, count in tally.by_kind().items()]
    if tally.invalid:
        lines.append(f"  {'invalid':<12} {tally.invalid:>10}")
    lines += [f"  {name}: {value}" for name, value in extra.items()]
    return "\n".join(lines)
