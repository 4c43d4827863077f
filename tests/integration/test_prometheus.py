"""A real Prometheus, scraping a real worker fed by the real broker, answers every query we ship.

Every PromQL expression of the Grafana dashboards and of the alerting and
recording rules is evaluated through Prometheus' HTTP API: each must parse,
and each must return at least one series, except those reading metrics that
nothing updates yet (``NOT_PRODUCED_YET``; remove a name when its issue lands
and the test then holds its queries to the same standard). Alert expressions
are evaluated with ``bool`` comparisons, so a quiet alert still shows that it
reads real series. The worker runs with JSON logs, checked here too.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.prometheus import promql
from deploy.prometheus.local import Prometheus, PrometheusError, running_prometheus
from tests.support.events import BASE_TIME, bad_messages, encode, valid_event
from tests.support.kafka_io import publish, wait_for
from tests.support.worker import WorkerEnv, running_worker, scrape

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

NOT_PRODUCED_YET: dict[str, str] = {
    "nudge_trigger_decisions_total": "issue 5 (trigger engine)",
    "nudge_event_to_trigger_seconds": "issue 5 (trigger engine)",
    "nudge_attribution_conversions_total": "issue 5 (attribution and lift)",
    "nudge_watermark_delay_seconds": "issue 5 (event-time watermark)",
    "nudge_late_events_total": "issue 5 (event-time watermark)",
    "nudge_model_auc": "issue 4 (online models)",
    "nudge_model_log_loss": "issue 4 (online models)",
    "nudge_model_calibration_error": "issue 4 (online models)",
    "nudge_model_examples_learned_total": "issue 4 (online models)",
    "nudge_model_snapshot_timestamp_seconds": "issue 4 (model snapshots)",
    "nudge_model_drift_total": "issue 4 (drift detection)",
}
"""Metrics defined and exposed (no samples yet) that the model and trigger work will update."""

# What Grafana substitutes before it sends a query.
DASHBOARD_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}

KINDS = ("clickstream", "cart", "email", "customers")
VALID_PER_WAVE = 200
DUPLICATES = 20
BAD = 36
LEAKED_ADDRESS = "ada.lovelace@example.com"


def family_of(name: str) -> str:
    """The metric family (as the text format names it) a selected series belongs to."""
    return name.removesuffix("_total")


def messages(env: WorkerEnv, rng: random.Random, wave: int) -> list[tuple[str, bytes, bytes]]:
    """Valid events, some sent twice (skipped as duplicates), and garbage to dead-letter."""
    out: list[tuple[str, bytes, bytes]] = []
    for n in range(VALID_PER_WAVE):
        customer = f"cust-{rng.randrange(60):03d}"
        kind = KINDS[n % len(KINDS)]
        at = BASE_TIME + timedelta(minutes=wave * 1000 + n)
        out.append(
            (env.topic(kind), customer.encode(), encode(valid_event(rng, kind, customer, at)))
        )
    out.extend(out[: DUPLICATES // 2])
    for index in range(wave * BAD // 2, (wave + 1) * BAD // 2):
        _, kind, key, raw, *_ = bad_messages(rng, "cust-000", index)
        out.append((env.topic(kind), key, raw))
    return out


def email_keyed(env: WorkerEnv, rng: random.Random) -> tuple[str, bytes, bytes]:
    """A producer mistake: keyed by email address; dead-lettered, and logged redacted."""
    event = valid_event(rng, "cart", "cust-001", BASE_TIME)
    return (env.topic("cart"), LEAKED_ADDRESS.encode(), encode(event))


def dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in DASHBOARD_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((f"{path.name}: {panel['title']}", expr))
    assert found
    return found


def loaded_rules(prometheus: Prometheus) -> list[dict[str, Any]]:
    groups = prometheus.api("rules")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def blocked_by(expr: str, recorded: dict[str, str], seen: frozenset[str] = frozenset()) -> set[str]:
    """The not-yet-produced metrics ``expr`` depends on, through recorded series too."""
    blocked = set()
    for name in promql.referenced_metrics(expr):
        if name in NOT_PRODUCED_YET or family_of(name) in NOT_PRODUCED_YET:
            blocked.add(name)
        elif name in recorded and name not in seen:
            blocked |= blocked_by(recorded[name], recorded, seen | {name})
    return blocked


def evaluate(prometheus: Prometheus, queries: Iterable[tuple[str, str, bool]]) -> list[str]:
    """Problems with the queries: failed to parse, or no series where series are due."""
    problems = []
    for where, expr, must_have_series in queries:
        try:
            result = prometheus.query(expr)
        except PrometheusError as exc:
            problems.append(f"{where}: {expr!r} failed: {exc}")
            continue
        if must_have_series and not result:
            problems.append(f"{where}: {expr!r} returned no series")
    return problems


def test_every_dashboard_and_rule_expression_answers_from_a_real_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    waves = [messages(env, rng, 0), [*messages(env, rng, 1), email_keyed(env, rng)]]
    consumed = 2 * (VALID_PER_WAVE + DUPLICATES // 2)
    deadlettered = BAD + 1
    worker_log = tmp_path / "worker.log"

    with running_worker(env, worker_log, extra={"NUDGE_LOG_FORMAT": "json"}):
        # Every family is on the page from the start, the later work's ones without samples.
        families = {f.name: f for f in text_string_to_metric_families(scrape(env.web_port))}
        for name in NOT_PRODUCED_YET:
            assert family_of(name) in families, name
            assert families[family_of(name)].samples == [], name

        with running_prometheus(
            tmp_path / "prometheus", [f"127.0.0.1:{env.web_port}"]
        ) as prometheus:
            publish(kafka_bootstrap, waves[0])
            wait_for(
                lambda: prometheus.query('up{job="nudge"} == 1'),
                timeout=30,
                what="Prometheus scraping the worker",
            )
            time.sleep(3)  # a few scrapes before the second wave, so rates are not zero
            publish(kafka_bootstrap, waves[1])

            def total(expr: str) -> float:
                result = prometheus.query(expr)
                return float(result[0]["value"][1]) if result else -1.0

            wait_for(
                lambda: (
                    total("sum(nudge_events_consumed_total)") == consumed
                    and total("sum(nudge_events_deadlettered_total)") == deadlettered
                ),
                timeout=120,
                what=f"Prometheus to see {consumed} events consumed, {deadlettered} dead letters",
            )
            assert total("sum(nudge_events_skipped_total)") == DUPLICATES
            assert total("sum(nudge_table_entries)") > 0
            assert total('sum(nudge_consumer_lag_messages{topic="cart"})') >= 0

            rules = wait_for(
                lambda: (
                    (r := loaded_rules(prometheus))
                    and all(rule["health"] != "unknown" for rule in r)
                    and r
                ),
                timeout=30,
                what="every rule evaluated once",
            )
            assert len(rules) >= 20
            unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
            assert not unhealthy

            recorded = {r["name"]: r["query"] for r in rules if r["type"] == "recording"}
            queries: list[tuple[str, str, bool]] = []
            for where, expr in dashboard_queries():
                queries.append((where, expr, not blocked_by(expr, recorded)))
            for rule in rules:
                expr = rule["query"]
                if rule["type"] == "alerting":
                    expr = promql.with_bool_comparisons(expr)
                queries.append((f"rule {rule['name']}", expr, not blocked_by(expr, recorded)))
                if rule["type"] == "recording":
                    # The recorded series itself, as dashboards and alerts read it.
                    queries.append(
                        (f"series {rule['name']}", rule["name"], not blocked_by(expr, recorded))
                    )
            required = sum(1 for *_, due in queries if due)
            assert required >= 20, queries

            # Rates need two scrapes inside their window; give them a little time.
            deadline = time.monotonic() + 60
            while (problems := evaluate(prometheus, queries)) and time.monotonic() < deadline:
                time.sleep(1)
            assert not problems, "\n".join(problems)

    # Structured logs: JSON lines (Faust's banner aside), the email address redacted.
    text = worker_log.read_text()
    records = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {"timestamp", "level", "logger", "message"} <= set(records[0])
    ingest = [r for r in records if r["logger"] == "streams.ingest"]
    assert len(ingest) >= deadlettered
    assert any("key_mismatch" in r["message"] and "<redacted>" in r["message"] for r in ingest)
    assert LEAKED_ADDRESS not in text
