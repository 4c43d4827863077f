"""The shell around the simulator: send its events to Kafka or write them to files.

Generation stays pure (:mod:`streams.simulator.shop`); this module adds what
a run on a real machine needs: a destination (the inbound topics, keyed by
``customer_id``, or ``events.jsonl`` and ``truth.jsonl`` in a directory),
pacing (as fast as possible, a target rate, or simulated time running N
times faster than wall time), bounds on the number of events and on wall
time, progress on stderr and a summary at the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from schemas import TopicKind, encode
from streams.sending import (
    DeliveryError,
    EventSink,
    KafkaSink,
    Pacer,
    Progress,
    Tally,
    summary_text,
)
from streams.settings import Settings
from streams.simulator.config import SimulationConfig
from streams.simulator.records import Record, SimulatedEvent, event_line, truth_line
from streams.simulator.shop import generate

__all__ = [
    "EVENTS_FILE",
    "TRUTH_FILE",
    "JsonLinesSink",
    "PublishResult",
    "default_start",
    "main",
    "publish",
    "run_simulation",
]

EVENTS_FILE = "events.jsonl"
TRUTH_FILE = "truth.jsonl"

StopReason = Literal["end", "max_events", "max_seconds"]


class JsonLinesSink:
    """Writes ``{"topic_kind": ..., "event": {...}}`` lines, the shape ``nudge replay`` reads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("wb")

    def send(self, kind: TopicKind, key: bytes, value: bytes) -> None:
        """Append one event; the key is the event's own ``customer_id``, so it is not written."""
        del key
        self._file.write(event_line(kind, value))

    def close(self) -> None:
        """Close the file."""
        self._file.close()


@dataclass
class PublishResult:
    """How a run went: counts per kind, truth records written, why it stopped."""

    tally: Tally = field(default_factory=Tally)
    truth_records: int = 0
    stopped_by: StopReason = "end"
    elapsed: float = 0.0

    def as_dict(self, config: SimulationConfig, destination: str) -> dict[str, Any]:
        """Summarize the run as JSON-ready values (``nudge --json simulate`` prints them)."""
        return {
            "destination": destination,
            "events": self.tally.total,
            "by_kind": self.tally.by_kind(),
            "truth_records": self.truth_records,
            "stopped_by": self.stopped_by,
            "elapsed_seconds": round(self.elapsed, 3),
            "seed": config.seed,
            "customers": config.customers,
            "start": config.start.isoformat(),
            "end": config.end.isoformat(),
        }


def publish(
    records: Iterable[Record],
    sink: EventSink,
    *,
    truth: IO[bytes] | None = None,
    pacer: Pacer | None = None,
    progress: Progress | None = None,
    max_events: int | None = None,
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PublishResult:
    """Send events to ``sink`` and truth records to ``truth``, within the bounds.

    The sink is closed (flushed) before returning, also on error. A run cut
    short by a bound may end in the middle of a session: its truth record is
    written, some of its events are not.
    """
    pacer = pacer or Pacer()
    progress = progress or Progress(enabled=False)
    result = PublishResult()
    tally = result.tally
    started = clock()
    deadline = None if max_seconds is None else started + max_seconds
    try:
        for record in records:
            if not isinstance(record, SimulatedEvent):
                if truth is not None:
                    truth.write(truth_line(record))
                    result.truth_records += 1
                continue
            if max_events is not None and tally.total >= max_events:
                result.stopped_by = "max_events"
                break
            event = record.event
            on_time = pacer.wait(tally.total, event.occurred_at, deadline)
            if not on_time or (deadline is not None and clock() >= deadline):
                result.stopped_by = "max_seconds"
                break
            sink.send(record.kind, event.customer_id.encode(), encode(event))
            tally.published[record.kind] += 1
            progress.update(tally)
    finally:
        sink.close()
    result.elapsed = clock() - started
    progress.done(tally)
    return result


def default_start(now: datetime, duration: timedelta) -> datetime:
    """Start a run so that it ends at the last whole hour before ``now``.

    A worker rejects events too far ahead of its clock, so by default a
    simulated period lies entirely in the past, however fast it is played.
    """
    return (now - duration).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def run_simulation(
    settings: Settings,
    config: SimulationConfig,
    *,
    out: Path | None = None,
    truth_path: Path | None = None,
    pacer: Pacer | None = None,
    max_events: int | None = None,
    max_seconds: float | None = None,
    progress: Progress | None = None,
) -> tuple[PublishResult, str]:
    """Run a simulation to Kafka (or to ``out``/events.jsonl and truth.jsonl); return the result.

    With ``out`` the truth goes to ``out``/truth.jsonl; publishing to Kafka,
    it goes to ``truth_path`` if given.
    """
    sink: EventSink
    if out is not None:
        sink, destination = JsonLinesSink(out / EVENTS_FILE), str(out / EVENTS_FILE)
        truth_path = out / TRUTH_FILE
    else:
        sink = KafkaSink(settings, client_id="nudge-simulate")
        destination = f"Kafka {settings.bootstrap_servers}"
    with contextlib.ExitStack() as stack:
        truth = None
        if truth_path is not None:
            truth_path.parent.mkdir(parents=True, exist_ok=True)
            truth = stack.enter_context(truth_path.open("wb"))
        result = publish(
            generate(config),
            sink,
            truth=truth,
            pacer=pacer,
            progress=progress,
            max_events=max_events,
            max_seconds=max_seconds,
        )
    return result, destination


def main(
    settings: Settings,
    *,
    now: datetime,
    seed: int,
    customers: int,
    days: float,
    start: str | None,
    rate: float | None,
    speed: float | None,
    out: Path | None,
    truth: Path | None,
    max_events: int | None,
    max_seconds: float | None,
    json_summary: bool,
    quiet: bool,
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    """Do what ``nudge simulate`` was asked; return the exit code.

    0: done; 1: Kafka did not acknowledge every event; 2: bad options.
    """
    try:
        duration = timedelta(days=days)
        began = default_start(now, duration) if start is None else _aware(start)
        config = SimulationConfig(seed=seed, customers=customers, start=began, duration=duration)
        if out is not None and truth is not None:
            raise ValueError("--truth is for publishing to Kafka; with --out it is out/truth.jsonl")
        pacer = Pacer(rate=rate, speed=speed)
    except ValueError as exc:
        stderr.write(f"nudge simulate: {exc}\n")
        return 2
    progress = Progress(stream=stderr, enabled=not quiet)
    try:
        result, destination = run_simulation(
            settings,
            config,
            out=out,
            truth_path=truth,
            pacer=pacer,
            max_events=max_events,
            max_seconds=max_seconds,
            progress=progress,
        )
    except DeliveryError as exc:
        stderr.write(f"nudge simulate: {exc}\n")
        return 1
    summary = result.as_dict(config, destination)
    if json_summary:
        stdout.write(orjson.dumps(summary).decode() + "\n")
    elif not quiet:
        extra = {k: summary[k] for k in ("truth_records", "stopped_by", "seed", "start", "end")}
        stdout.write(summary_text(result.tally, result.elapsed, destination, extra) + "\n")
    return 0


def _aware(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start {text!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ValueError(f"--start {text!r} needs an offset, e.g. 2026-11-02T00:00:00Z")
    return moment
