"""A real Prometheus, scraping a real worker fed by the real broker, answers every query we ship.

Every PromQL expression of the Grafana dashboards and of the alerting and
recording rules is evaluated through Prometheus' HTTP API: each must parse
and return at least one series. Alert expressions are evaluated with
``bool`` comparisons, so a quiet alert still shows that it reads real series.

So that every metric has series, the worker runs on the wall clock with
waits of seconds and is fed, besides a mix of valid, duplicate and bad
events, a small live shop: consenting customers on both sides of the holdout
browse and leave (browse-abandonment triggers, sent and held out), then buy
(conversions in both arms, positive labels) and send a straggler from an hour
ago (late events); customers seen two days ago give the models negative
labels. Drift needs no event: its counter starts at zero. The worker runs with
JSON logs, checked here too.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy.prometheus import promql
from deploy.prometheus.local import Prometheus, PrometheusError, running_prometheus
from streams.core.policy import in_holdout
from tests.support.events import BASE_TIME, bad_messages, encode, valid_event
from tests.support.kafka_io import publish, read_all, wait_for
from tests.support.learning import event, order, view
from tests.support.worker import WorkerEnv, running_worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

SALT = "nudge-prometheus-test"
HOLDOUT_SHARE = 0.5
LIVE = {
    "NUDGE_LOG_FORMAT": "json",
    "NUDGE_LOG_REPEAT_BURST": "0",  # every dead letter's line, for the log checks at the end
    "NUDGE_BROWSE_WAIT_MINUTES": "0.05",  # 3 seconds
    "NUDGE_ALLOWED_LATENESS_SECONDS": "1",
    "NUDGE_CLOCK_TICK_SECONDS": "0.5",
    "NUDGE_HOLDOUT_SHARE": str(HOLDOUT_SHARE),
    "NUDGE_EXPERIMENT_SALT": SALT,
    "NUDGE_SNAPSHOT_EVERY_SECONDS": "1",
}
"""Worker settings that make triggers, labels and model snapshots happen within seconds."""

# What Grafana substitutes before it sends a query.
DASHBOARD_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}

KINDS = ("clickstream", "cart", "email", "customers")
VALID_PER_WAVE = 200
DUPLICATES = 20
BAD = 36
LEAKED_ADDRESS = "ada.lovelace@example.com"
PER_ARM = 3
STALE = 6


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
    cart_event = valid_event(rng, "cart", "cust-001", BASE_TIME)
    return (env.topic("cart"), LEAKED_ADDRESS.encode(), encode(cart_event))


def shoppers() -> tuple[list[str], list[str]]:
    """Treated and held-out customers, ``PER_ARM`` each, so the lift has both arms."""
    names = [f"shopper-{n:02d}" for n in range(50)]
    treated = [c for c in names if not in_holdout(c, SALT, HOLDOUT_SHARE)][:PER_ARM]
    held = [c for c in names if in_holdout(c, SALT, HOLDOUT_SHARE)][:PER_ARM]
    assert len(treated) == len(held) == PER_ARM
    return treated, held


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


def evaluate(prometheus: Prometheus, queries: Iterable[tuple[str, str]]) -> list[str]:
    """Problems with the queries: failed to parse, or returned no series."""
    problems = []
    for where, expr in queries:
        try:
            result = prometheus.query(expr)
        except PrometheusError as exc:
            problems.append(f"{where}: {expr!r} failed: {exc}")
            continue
        if not result:
            problems.append(f"{where}: {expr!r} returned no series")
    return problems


def customers_in(bootstrap: str, topic: str) -> set[str]:
    """The customers a trigger topic holds a trigger for."""
    return {orjson.loads(r.value or b"null")["customer_id"] for r in read_all(bootstrap, topic)}


def test_every_dashboard_and_rule_expression_answers_from_a_real_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    waves = [messages(env, rng, 0), [*messages(env, rng, 1), email_keyed(env, rng)]]
    treated, held = shoppers()
    shop = treated + held
    clicks, cart, customers = (env.topic(kind) for kind in ("clickstream", "cart", "customers"))
    start = datetime.now(UTC)
    consents = [
        (customers, *event("consent_changed", c, start, channel="email", granted=True))
        for c in shop
    ]
    # Seen two days ago: the 24-hour horizon of their purchase snapshots has passed.
    stale = [(clicks, *view(f"stale-{n}", start - timedelta(days=2))) for n in range(STALE)]
    consumed = 2 * (VALID_PER_WAVE + DUPLICATES // 2) + len(consents) + len(stale)
    deadlettered = BAD + 1
    worker_log = tmp_path / "worker.log"

    with (
        running_worker(env, worker_log, extra=LIVE),
        running_prometheus(tmp_path / "prometheus", [f"127.0.0.1:{env.web_port}"]) as prometheus,
    ):

        def total(expr: str) -> float:
            result = prometheus.query(expr)
            return float(result[0]["value"][1]) if result else -1.0

        def by_label(label: str, expr: str) -> dict[str, float]:
            return {r["metric"][label]: float(r["value"][1]) for r in prometheus.query(expr)}

        publish(kafka_bootstrap, [*waves[0], *consents, *stale])
        wait_for(
            lambda: prometheus.query('up{job="nudge"} == 1'),
            timeout=30,
            what="Prometheus scraping the worker",
        )
        time.sleep(3)  # a few scrapes before the second wave, so rates are not zero
        publish(kafka_bootstrap, waves[1])
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

        # Consent is in every shopper's profile: now they browse and leave.
        views = [(clicks, *view(c, datetime.now(UTC))) for c in shop]
        publish(kafka_bootstrap, views)
        wait_for(
            lambda: (
                set(treated) <= customers_in(kafka_bootstrap, env.topic("triggers"))
                and set(held) <= customers_in(kafka_bootstrap, env.topic("holdout"))
            ),
            timeout=90,
            what="a browse-abandonment trigger for every shopper, sent or held out",
        )
        # Then they buy, and a page view from an hour ago arrives behind the watermark.
        bought = datetime.now(UTC)
        orders = [(cart, *order(c, bought)) for c in shop]
        an_hour_ago = bought - timedelta(hours=1)
        late = [
            (clicks, *event("page_view", c, an_hour_ago, url="https://shop.example/")) for c in shop
        ]
        publish(kafka_bootstrap, [*orders, *late])
        consumed += len(views) + len(orders) + len(late)
        conversions = (
            'sum by (arm) (nudge_attribution_conversions_total{trigger_type="browse_abandonment"})'
        )
        learned = 'sum(nudge_model_examples_learned_total{model="purchase"})'
        wait_for(
            lambda: (
                total("sum(nudge_events_consumed_total)") == consumed
                and total("sum(nudge_late_events_total)") >= len(shop)
                and by_label("arm", conversions).keys() == {"treatment", "holdout"}
                and min(by_label("arm", conversions).values()) >= PER_ARM
                # Each shopper's view labelled positive by the order, each stale view negative.
                and total(learned) >= len(shop) + STALE
                and by_label("model", "nudge_model_snapshot_timestamp_seconds").keys()
                == {"purchase", "engagement"}
            ),
            timeout=90,
            what="conversions in both arms, late events, examples learned and model snapshots",
        )

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

        queries = dashboard_queries()
        for rule in rules:
            expr = rule["query"]
            if rule["type"] == "alerting":
                expr = promql.with_bool_comparisons(expr)
            queries.append((f"rule {rule['name']}", expr))
            if rule["type"] == "recording":
                # The recorded series itself, as dashboards and alerts read it.
                queries.append((f"series {rule['name']}", rule["name"]))

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
