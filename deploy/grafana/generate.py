"""Write Nudge's Grafana dashboards (``deploy/grafana/dashboards/*.json``) from one description.

The JSON files are checked in and provisioned as they are; this script is
how they stay consistent (same datasource, units, layout, variable). Edit
the panels below, then run ``make dashboards``; a unit test fails when the
files and this script disagree, and the Prometheus integration test runs
every query below against a real worker.

``python deploy/grafana/generate.py [--check] [OUT_DIR]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS_DIR = HERE / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "nudge-prometheus"}
"""The datasource provisioned by ``provisioning/datasources/prometheus.yml``."""

WORKERS = 'instance=~"$instance"'
"""Label matcher every raw selector carries, so the dashboard can focus on some workers."""

RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    """One PromQL query and the legend of its series."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A time-series (or stat) panel."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    extra_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """A titled group of panels."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    """A dashboard file."""

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]


def q(expr: str, legend: str) -> Query:
    """Build a query (shorthand for the tables below)."""
    return Query(expr, legend)


def quantiles(metric: str, by: str) -> tuple[Query, ...]:
    """p50 and p99 of a histogram, per value of ``by``."""
    return tuple(
        q(
            f"histogram_quantile({p}, sum by ({by}, le) "
            f"(rate({metric}_bucket{{{WORKERS}}}[{RATE}])))",
            f"p{round(p * 100)} {{{{{by}}}}}",
        )
        for p in (0.5, 0.99)
    )


PIPELINE = Dashboard(
    uid="nudge-pipeline",
    title="Nudge / Pipeline",
    description="Events in, consumer lag, table sizes, dead letters and processing time.",
    rows=(
        Row(
            "Throughput and lag",
            (
                Panel(
                    "Workers up",
                    "Workers Prometheus scrapes successfully.",
                    (q(f'sum(up{{job="nudge", {WORKERS}}})', "workers"),),
                    kind="stat",
                    width=24,
                    height=3,
                ),
                Panel(
                    "Events consumed by topic",
                    "Inbound events decoded, validated and applied per second.",
                    (
                        q(
                            f"sum by (topic) (rate(nudge_events_consumed_total{{{WORKERS}}}"
                            f"[{RATE}]))",
                            "{{topic}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Events consumed by type",
                    "Per event type: a type dropping to zero points at one producer.",
                    (
                        q(
                            f"sum by (topic, type) (rate(nudge_events_consumed_total{{{WORKERS}}}"
                            f"[{RATE}]))",
                            "{{topic}} {{type}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Consumer lag by topic",
                    "Messages not yet committed, summed over partitions. Growing: add workers.",
                    (
                        q(
                            f"sum by (topic) (nudge_consumer_lag_messages{{{WORKERS}}})",
                            "{{topic}}",
                        ),
                    ),
                ),
                Panel(
                    "Consumer lag by partition",
                    "One stuck partition points at one worker or one poison message.",
                    (
                        q(
                            f"max by (topic, partition) (nudge_consumer_lag_messages{{{WORKERS}}})",
                            "{{topic}}/{{partition}}",
                        ),
                    ),
                ),
                Panel(
                    "Profiles held",
                    "Customer profiles per worker (per partition with RocksDB, estimated).",
                    (
                        q(
                            "sum by (instance, partition) "
                            f'(nudge_table_entries{{table="profiles", {WORKERS}}})',
                            "{{instance}} {{partition}}",
                        ),
                    ),
                ),
                Panel(
                    "Profile cache hit ratio",
                    "Profile reads answered from memory; the rest decode stored bytes. Low and "
                    "falling: raise NUDGE_PROFILE_CACHE_CUSTOMERS if the memory allows.",
                    (
                        q(
                            "sum by (instance) (rate(nudge_profile_cache_hits_total"
                            f"{{{WORKERS}}}[{RATE}])) / sum by (instance) "
                            f"(rate(nudge_profile_cache_hits_total{{{WORKERS}}}[{RATE}]) + "
                            f"rate(nudge_profile_cache_misses_total{{{WORKERS}}}[{RATE}]))",
                            "{{instance}}",
                        ),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Events skipped",
                    "Valid events that changed nothing: redelivered duplicates, erased customers.",
                    (
                        q(
                            f"sum by (topic, reason) (rate(nudge_events_skipped_total{{{WORKERS}}}"
                            f"[{RATE}]))",
                            "{{topic}} {{reason}}",
                        ),
                    ),
                    unit="ops",
                ),
            ),
        ),
        Row(
            "Dead letters",
            (
                Panel(
                    "Dead letters by topic and reason",
                    "Messages sent to events.deadletter per second; each record says why.",
                    (
                        q(
                            "sum by (topic, reason) "
                            f"(rate(nudge_events_deadlettered_total{{{WORKERS}}}[{RATE}]))",
                            "{{topic}} {{reason}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Dead-letter share by topic",
                    "Share of a topic's messages dead-lettered over 10 minutes (alert above 1%).",
                    (q("topic:nudge_events_deadletter_ratio:rate10m", "{{topic}}"),),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Latency",
            (
                Panel(
                    "Processing time per event",
                    "Decode, validate and apply one message (p50 and p99).",
                    quantiles("nudge_event_processing_seconds", "topic"),
                    unit="s",
                ),
                Panel(
                    "Watermark delay by partition",
                    "Wall clock minus each partition's event-time watermark.",
                    (
                        q(
                            f"max by (partition) (nudge_watermark_delay_seconds{{{WORKERS}}})",
                            "{{partition}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Late events",
                    "Events behind the watermark: applied, but fire no passed deadline.",
                    (
                        q(
                            f"sum by (topic) (rate(nudge_late_events_total{{{WORKERS}}}[{RATE}]))",
                            "{{topic}}",
                        ),
                    ),
                    unit="ops",
                ),
            ),
        ),
    ),
)

TRIGGERS = Dashboard(
    uid="nudge-triggers",
    title="Nudge / Triggers and lift",
    description="Trigger decisions by type and outcome, event-to-trigger latency, lift.",
    rows=(
        Row(
            "Decisions",
            (
                Panel(
                    "Decisions by type and outcome",
                    "Every policy decision: sent, suppressed, capped, holdout, deferred.",
                    (
                        q(
                            "sum by (trigger_type, outcome) "
                            f"(rate(nudge_trigger_decisions_total{{{WORKERS}}}[{RATE}]))",
                            "{{trigger_type}} {{outcome}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Triggers sent by type",
                    "Triggers handed to the ESP (triggers.outbound), deferred ones included.",
                    (
                        q(
                            "sum by (trigger_type) (rate(nudge_trigger_decisions_total"
                            f'{{outcome=~"sent|deferred", {WORKERS}}}[{RATE}]))',
                            "{{trigger_type}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Event-to-trigger latency",
                    "From the moment a trigger became due to its send (p50, p99; budget 60 s).",
                    quantiles("nudge_event_to_trigger_seconds", "trigger_type"),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Lift against holdout",
            (
                Panel(
                    "Conversions by type and arm (24 h)",
                    "Orders credited to a trigger within the attribution window.",
                    (
                        q(
                            "sum by (trigger_type, arm) "
                            f"(increase(nudge_attribution_conversions_total{{{WORKERS}}}[1d]))",
                            "{{trigger_type}} {{arm}}",
                        ),
                    ),
                ),
                Panel(
                    "Conversion rate by arm (24 h)",
                    "Conversions per sent (treatment) or held-out (holdout) trigger.",
                    (
                        q(
                            "trigger_type_arm:nudge_conversion_rate:ratio_1d",
                            "{{trigger_type}} {{arm}}",
                        ),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Lift over holdout (24 h)",
                    "Treatment conversion rate over holdout's, minus 1: above 0, triggers help.",
                    (q("trigger_type:nudge_conversion_lift:ratio_1d", "{{trigger_type}}"),),
                    unit="percentunit",
                ),
            ),
        ),
    ),
)

MODELS = Dashboard(
    uid="nudge-models",
    title="Nudge / Model quality",
    description="Online models: progressive-validation quality, learning, snapshots, drift.",
    rows=(
        Row(
            "Quality",
            (
                Panel(
                    "ROC AUC (rolling)",
                    "Progressive validation: each example is scored before it is learned.",
                    (q(f"max by (model) (nudge_model_auc{{{WORKERS}}})", "{{model}}"),),
                    unit="percentunit",
                ),
                Panel(
                    "Log loss (rolling)",
                    "Lower is better; a jump with a stable AUC means miscalibration.",
                    (q(f"max by (model) (nudge_model_log_loss{{{WORKERS}}})", "{{model}}"),),
                ),
                Panel(
                    "Calibration error (rolling)",
                    "Mean gap between predicted and observed purchase rates.",
                    (
                        q(
                            f"max by (model) (nudge_model_calibration_error{{{WORKERS}}})",
                            "{{model}}",
                        ),
                    ),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Learning",
            (
                Panel(
                    "Examples learned",
                    "Labelled examples learned per second (the trainer).",
                    (
                        q(
                            "sum by (model) "
                            f"(rate(nudge_model_examples_learned_total{{{WORKERS}}}[{RATE}]))",
                            "{{model}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Snapshot age",
                    "Age of the oldest snapshot any worker scores with (alert above 2 h).",
                    (q("model:nudge_model_snapshot_age_seconds:max", "{{model}}"),),
                    unit="s",
                ),
                Panel(
                    "Drift detections (1 h)",
                    "Changes the drift detector signalled in the last hour.",
                    (
                        q(
                            f"sum by (model) (increase(nudge_model_drift_total{{{WORKERS}}}[1h]))",
                            "{{model}}",
                        ),
                    ),
                ),
            ),
        ),
    ),
)

DASHBOARDS = (PIPELINE, TRIGGERS, MODELS)


def instance_variable() -> dict[str, Any]:
    """Build the ``$instance`` variable: every scraped worker, all selected by default."""
    return {
        "name": "instance",
        "label": "Worker",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": 'label_values(up{job="nudge"}, instance)', "refId": "instance"},
        "definition": 'label_values(up{job="nudge"}, instance)',
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _panels(dashboard: Dashboard) -> Iterator[dict[str, Any]]:
    ids = iter(range(1, 1000))
    y = 0
    for row in dashboard.rows:
        yield {
            "id": next(ids),
            "type": "row",
            "title": row.title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        }
        y += 1
        x, row_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y = 0, y + row_height
                row_height = 0
            yield _panel(next(ids), panel, x, y)
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height


def _panel(panel_id: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    options: dict[str, Any]
    if panel.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, **panel.extra_defaults}, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
                "range": True,
            }
            for n, query in enumerate(panel.queries)
        ],
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """Build the Grafana JSON model of ``dashboard``."""
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["nudge"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [instance_variable()]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "Nudge dashboards",
                "type": "dashboards",
                "tags": ["nudge"],
                "asDropdown": True,
            }
        ],
        "panels": list(_panels(dashboard)),
    }


def files() -> dict[str, str]:
    """Map each dashboard's file name to its content, as checked in."""
    return {
        f"{dashboard.uid}.json": json.dumps(render(dashboard), indent=2, ensure_ascii=False) + "\n"
        for dashboard in DASHBOARDS
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report the ones that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DASHBOARDS_DIR)
    parser.add_argument("--check", action="store_true", help="Fail if the files differ.")
    args = parser.parse_args(argv)
    stale = []
    for name, content in files().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != content:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if stale:
        print(f"out of date (run make dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
