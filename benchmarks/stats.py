"""The benchmark's pure helpers: percentiles, rates, trigger matching, /proc and /metrics
parsing, the table.

Nothing here reads a clock, a file or a socket: the runner (``benchmarks.run``)
passes text and samples in, so each helper is unit-tested on fixed input
(``tests/unit/test_benchmarks.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """A progress reading: ``count`` events done at ``at`` seconds (any monotonic clock).

    ``cpu`` is the CPU seconds of the measured process at that moment, when known.
    """

    at: float
    count: int
    cpu: float | None = None


@dataclass(frozen=True)
class Window:
    """The steady part of a run: from the first sample at ``low`` to the first at ``high``."""

    start: Sample
    end: Sample

    @property
    def events(self) -> int:
        return self.end.count - self.start.count

    @property
    def seconds(self) -> float:
        return self.end.at - self.start.at

    @property
    def rate(self) -> float:
        """Events per second inside the window."""
        return self.events / self.seconds if self.seconds > 0 else math.nan

    @property
    def cpu_seconds(self) -> float | None:
        if self.start.cpu is None or self.end.cpu is None:
            return None
        return self.end.cpu - self.start.cpu


def steady_window(
    samples: Sequence[Sample], total: int, *, low: float = 0.01, high: float = 0.99
) -> Window:
    """The samples bracketing ``low``..``high`` of ``total`` events, excluding start-up and tail.

    >>> s = [Sample(0.0, 0), Sample(1.0, 10), Sample(2.0, 60), Sample(3.0, 100)]
    >>> steady_window(s, 100, low=0.05, high=0.99).rate
    45.0
    """
    if total <= 0:
        raise ValueError("total must be positive")
    first = next((s for s in samples if s.count >= low * total), None)
    last = next((s for s in samples if s.count >= high * total), None)
    if first is None or last is None or last.at <= first.at:
        raise ValueError(f"the samples never went from {low:.0%} to {high:.0%} of {total}")
    return Window(first, last)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between closest ranks (numpy's default).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be in [0, 100]")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass(frozen=True)
class Probe:
    """A probe event as sent: the trigger it causes must name its session and event time."""

    session_id: str
    occurred_at: dt.datetime
    sent_at: float
    """Wall-clock seconds (``time.time()``) just before the send."""


@dataclass
class TriggerMatch:
    """Triggers read back, each matched exactly to the probe event that caused it.

    A probe customer has one event that can cause a trigger, the probe, so
    the trigger's Kafka key names it; the trigger must also carry that
    customer id, ``trigger_type``, the probe's session as its key and the
    probe's ``occurred_at``, or it counts as ``mismatched`` and its time is
    not taken. A second trigger for a probe is a duplicate, one for any
    other customer is in ``others``.

    >>> import datetime as dt
    >>> at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> match = TriggerMatch("high_intent")
    >>> match.expect("p1", Probe("s1", at, 100.0))
    >>> match.read("p1", "p1", "high_intent", "s1", at, 100_004.0, 100.006)
    >>> match.matched, match.done, [round(ms) for ms in match.observed_ms]
    (1, True, [6])
    """

    trigger_type: str
    probes: dict[str, Probe] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    matched: int = 0
    mismatched: int = 0
    duplicates: int = 0
    others: int = 0
    observed_ms: list[float] = field(default_factory=list)
    """Send to the moment the trigger was read."""
    produced_ms: list[float] = field(default_factory=list)
    """Send to the trigger's Kafka timestamp: the worker's part, without the read."""

    def expect(self, customer_id: str, probe: Probe) -> None:
        """Register a probe before it is sent, so its trigger cannot come first."""
        if customer_id in self.probes:
            raise ValueError(f"customer {customer_id!r} already has a probe")
        self.probes[customer_id] = probe

    def read(
        self,
        key: str | None,
        customer_id: str,
        trigger_type: str,
        session_key: str,
        occurred_at: dt.datetime,
        kafka_ms: float,
        received: float,
    ) -> None:
        """Count one trigger read at wall time ``received`` (its Kafka timestamp ``kafka_ms``)."""
        probe = None if key is None else self.probes.get(key)
        if key is None or probe is None:
            self.others += 1
            return
        if key in self.answered:
            self.duplicates += 1
            return
        self.answered.add(key)
        if (customer_id, trigger_type, session_key, occurred_at) != (
            key,
            self.trigger_type,
            probe.session_id,
            probe.occurred_at,
        ):
            self.mismatched += 1
            return
        self.matched += 1
        self.observed_ms.append((received - probe.sent_at) * 1000)
        self.produced_ms.append(kafka_ms - probe.sent_at * 1000)

    @property
    def done(self) -> bool:
        """Tell whether every probe has had its trigger, matched or not."""
        return len(self.answered) >= len(self.probes)


def cpu_ticks(stat: str) -> int:
    """``utime + stime`` (clock ticks) from the text of ``/proc/PID/stat``.

    The command name (field 2) may hold spaces and parentheses, so the fields
    are counted after its last ``)``.

    >>> cpu_ticks("42 (my (odd) name) S 1 42 42 0 -1 0 0 0 0 0 700 50 0 0")
    750
    """
    rest = stat[stat.rindex(")") + 1 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def status_bytes(status: str, field: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``...) of ``/proc/PID/status``, in bytes."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            number, _, unit = value.strip().partition(" ")
            if unit.strip() != "kB":
                raise ValueError(f"unexpected unit in {line!r}")
            return int(number) * 1024
    return None


def metric_sum(text: str, name: str) -> float:
    """Sum every sample of metric ``name`` (all label sets) in Prometheus text format."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` of ``/proc/cpuinfo`` (``unknown`` when absent)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown"


def per_100k(value: float, count: int) -> float:
    """Scale ``value`` measured over ``count`` things to 100,000 of them."""
    return value * 100_000 / count if count else math.nan


def fmt(value: float | int | str | None, digits: int = 3) -> str:
    """A number as a table shows it: thousands separators, ``digits`` significant figures.

    >>> fmt(23456.7), fmt(0.0123456), fmt(None), fmt(12)
    ('23,457', '0.0123', '-', '12')
    """
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    section: str
    metric: str
    value: float | int | str | None
    unit: str
    note: str = ""


def markdown_table(rows: Iterable[Row]) -> str:
    """Render rows as a GitHub markdown table; ``|`` inside cells is escaped."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| section | metric | value | unit | how / note |", "|---|---|---:|---|---|"]
    lines.extend(
        "| "
        + " | ".join(cell(part) for part in (r.section, r.metric, fmt(r.value), r.unit, r.note))
        + " |"
        for r in rows
    )
    return "\n".join(lines)


_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


def log_interval(text: str, start: str, end: str) -> float:
    """Seconds between the first log line containing ``start`` and the next containing ``end``.

    Each line's first timestamp is read, ISO 8601 (``2026-01-01T00:00:01.5+00:00``)
    or Faust's default (``[2026-01-01 00:00:01,500]``); NaN when a line is missing.

    >>> text = "[2026-01-01 00:00:01,500] [7] go\\n[2026-01-01 00:00:04,000] [7] done"
    >>> log_interval(text, "go", "done")
    2.5
    """
    began: dt.datetime | None = None
    for line in text.splitlines():
        if began is None and start in line:
            began = _line_time(line)
        elif began is not None and end in line:
            ended = _line_time(line)
            if ended is not None and (ended.tzinfo is None) == (began.tzinfo is None):
                return (ended - began).total_seconds()
    return math.nan


def _line_time(line: str) -> dt.datetime | None:
    match = _STAMP.search(line)
    if match is None:
        return None
    try:
        return dt.datetime.fromisoformat(match.group(1).replace(",", "."))
    except ValueError:
        return None
