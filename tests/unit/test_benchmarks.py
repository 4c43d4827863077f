"""The benchmark's pure helpers: no broker, no clock, no timing assertions."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from benchmarks.stats import (
    Probe,
    Row,
    Sample,
    TriggerMatch,
    cpu_model,
    cpu_ticks,
    fmt,
    log_interval,
    markdown_table,
    metric_sum,
    per_100k,
    percentile,
    status_bytes,
    steady_window,
)

pytestmark = pytest.mark.unit


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 101)


def test_the_steady_window_skips_start_up_and_tail() -> None:
    samples = [
        Sample(0.0, 0, 0.0),
        Sample(5.0, 0, 1.0),  # start-up: nothing consumed yet
        Sample(6.0, 20, 2.0),
        Sample(8.0, 420, 4.0),
        Sample(9.0, 990, 5.0),
        Sample(30.0, 1000, 6.0),  # a slow tail
    ]
    window = steady_window(samples, 1000)
    assert (window.start.at, window.end.at) == (6.0, 9.0)
    assert window.events == 970
    assert window.rate == pytest.approx(970 / 3)
    assert window.cpu_seconds == pytest.approx(3.0)


def test_the_steady_window_needs_progress() -> None:
    with pytest.raises(ValueError, match="never went"):
        steady_window([Sample(0.0, 0), Sample(1.0, 1000)], 1000)
    assert steady_window([Sample(0.0, 10), Sample(1.0, 1000)], 1000).cpu_seconds is None


def test_cpu_ticks_survive_a_command_name_with_spaces_and_parentheses() -> None:
    fields = ["S", "1", "7", "7", "0", "-1", "4194560", "90", "0", "3", "0", "1234", "56"]
    stat = "4242 (nudge (worker) x) " + " ".join([*fields, "0", "0", "20", "0", "9"])
    assert cpu_ticks(stat) == 1234 + 56


def test_status_fields_are_read_in_bytes() -> None:
    status = "Name:\tnudge\nVmPeak:\t  900 kB\nVmHWM:\t  512000 kB\nVmRSS:\t  409600 kB\n"
    assert status_bytes(status, "VmHWM") == 512_000 * 1024
    assert status_bytes(status, "VmRSS") == 409_600 * 1024
    assert status_bytes(status, "VmSwap") is None
    assert status_bytes("MemTotal:       24576000 kB\n", "MemTotal") == 24_576_000 * 1024


def test_cpu_model_is_the_first_model_name() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\n"
    assert cpu_model(cpuinfo) == "Intel(R) Xeon(R) Processor"
    assert cpu_model("processor : 0\n") == "unknown"


def test_metric_sum_adds_every_label_set_of_one_metric_only() -> None:
    text = "\n".join(
        [
            "# HELP nudge_events_consumed_total Inbound events",
            "# TYPE nudge_events_consumed_total counter",
            'nudge_events_consumed_total{topic="cart",type="cart_add"} 12.0',
            'nudge_events_consumed_total{topic="email",type="email_open"} 30.0',
            'nudge_events_consumed_created{topic="cart",type="cart_add"} 1.7e+09',
            'nudge_events_consumed_total_other{topic="x"} 99.0',
        ]
    )
    assert metric_sum(text, "nudge_events_consumed_total") == 42.0
    assert metric_sum(text, "nudge_events_deadlettered_total") == 0.0


def test_log_interval_reads_iso_and_faust_default_timestamps() -> None:
    iso = "\n".join(
        [
            "2026-11-23T11:55:38.935+00:00 INFO faust: Restoring state from changelog topics...",
            "not a timestamp: Recovery complete",
            "2026-11-23T11:55:40.004+00:00 INFO faust: Recovery complete",
        ]
    )
    faust_default = "\n".join(
        [
            "[2026-11-23 12:13:14,693] [5889] [INFO] [^---Recovery]: Restoring state from "
            "changelog topics... ",
            "[2026-11-23 12:13:56,409] [5889] [INFO] [^---Recovery]: Recovery complete ",
        ]
    )
    start, end = "Restoring state from changelog topics", "Recovery complete"
    assert log_interval(iso, start, end) == pytest.approx(1.069)
    assert log_interval(faust_default, start, end) == pytest.approx(41.716)
    assert math.isnan(log_interval(iso, "never logged", end))


def test_scaling_and_number_formatting() -> None:
    assert per_100k(45.0, 50_000) == 90.0
    assert math.isnan(per_100k(1.0, 0))
    assert fmt(1234567) == "1,234,567"
    assert fmt(2167.4) == "2,167"
    assert fmt(0.00819) == "0.00819"
    assert fmt(float("nan")) == "n/a"
    assert fmt("511/511") == "511/511"


def test_the_markdown_table_has_a_row_per_result_and_escapes_pipes() -> None:
    table = markdown_table(
        [
            Row("worker", "one worker, end to end", 2167.4, "events/s", "a | b"),
            Row("latency", "p99", None, "ms"),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| section | metric | value | unit | how / note |"
    assert lines[1] == "|---|---|---:|---|---|"
    assert lines[2] == "| worker | one worker, end to end | 2,167 | events/s | a \\| b |"
    assert lines[3] == "| latency | p99 | - | ms |  |"
    assert len(lines) == 4


AT = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def test_a_trigger_is_timed_only_when_it_is_its_probes() -> None:
    match = TriggerMatch("high_intent")
    match.expect("p1", Probe("s1", AT, 1_000.0))
    match.expect("p2", Probe("s2", AT, 1_000.5))
    assert not match.done
    match.read("p1", "p1", "high_intent", "s1", AT, 1_000_004.0, 1_000.010)
    match.read("p2", "p2", "high_intent", "s2", AT, 1_000_508.0, 1_000.512)
    assert match.done
    assert (match.matched, match.mismatched, match.duplicates, match.others) == (2, 0, 0, 0)
    assert match.observed_ms == [pytest.approx(10.0), pytest.approx(12.0)]
    assert match.produced_ms == [pytest.approx(4.0), pytest.approx(8.0)]


@pytest.mark.parametrize(
    ("customer_id", "trigger_type", "session_key", "occurred_at"),
    [
        ("p2", "high_intent", "s1", AT),  # keyed by the probe, about someone else
        ("p1", "cart_abandonment", "s1", AT),
        ("p1", "high_intent", "s0", AT),  # an earlier session of the customer
        ("p1", "high_intent", "s1", AT - dt.timedelta(microseconds=1)),  # another event
    ],
)
def test_a_trigger_differing_from_its_probe_is_mismatched_and_not_timed(
    customer_id: str, trigger_type: str, session_key: str, occurred_at: dt.datetime
) -> None:
    match = TriggerMatch("high_intent")
    match.expect("p1", Probe("s1", AT, 1_000.0))
    match.read("p1", customer_id, trigger_type, session_key, occurred_at, 1_000_004.0, 1_000.01)
    assert (match.matched, match.mismatched) == (0, 1)
    assert match.done
    assert match.observed_ms == []


def test_duplicates_and_other_customers_triggers_are_counted_apart() -> None:
    match = TriggerMatch("high_intent")
    match.expect("p1", Probe("s1", AT, 1_000.0))
    for _ in range(2):
        match.read("p1", "p1", "high_intent", "s1", AT, 1_000_004.0, 1_000.01)
    match.read("c9", "c9", "high_intent", "s9", AT, 1_000_004.0, 1_000.01)
    match.read(None, "p1", "high_intent", "s1", AT, 1_000_004.0, 1_000.01)
    assert (match.matched, match.duplicates, match.others) == (1, 1, 2)
    assert len(match.observed_ms) == 1
    with pytest.raises(ValueError, match="already has a probe"):
        match.expect("p1", Probe("s2", AT, 1_001.0))
