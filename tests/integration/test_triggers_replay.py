"""Triggers on event time through the real broker and a real worker: replays and restarts.

With ``NUDGE_WALL_CLOCK=false`` only event time moves a partition's clock, so
what a worker decides is a function of the order in which it applies each
partition's events. That order is the one thing a replay has to pin down:
Faust consumes the four inbound topics side by side, round-robin by message,
not merged by event time. Published all at once to the four topics, a topic
with few events per partition (cart) is read to its end while the
clickstream is still in its first hour, the partition's watermark jumps a
day ahead and most views arrive "late" and set no deadline: this file then
gave 11 triggers instead of 77, and two such replays differed by a
decision. A larger lateness does not help (1 h: 16 triggers, 6 h: 12; as
long as the file, nothing fires before its end).

So a backfill goes to one topic: ``nudge replay --ordered`` publishes every
event to the replay topic, which carries all kinds, and a partition's events
are applied in the file's order. The tests here replay a file that way, as
the command does. Tests that need the four topics themselves publish
through :class:`~tests.support.ordered.InOrder`, which sends runs in which
each partition's events come from a single topic and waits until the worker
has applied a run before it sends the next.

Two more things have to hold still for a byte-for-byte replay: the model
(a snapshot lands at a moment that depends on wall time, so the tests keep
the cold-start prior with ``NUDGE_MIN_POSITIVES`` out of reach), and
every stamp in a decision (``decided_at`` is the partition's watermark,
event time, never the wall clock).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings

from schemas import TopicKind
from streams.app import engine_config
from streams.core.engine import Destination
from streams.ingest import CustomerStore, Ingestor, Partitions
from streams.metrics import Metrics
from streams.models import ModelRegistry, model_configs
from streams.replay import Invalid, parse_file, replay, replay_to_kafka
from streams.settings import Settings
from streams.simulator import SimulationConfig
from streams.simulator.publish import JsonLinesSink, publish
from streams.simulator.shop import generate
from tests.support.event_time import EVENT_TIME
from tests.support.events import keyed_message
from tests.support.kafka_io import Record, latest_by_key, read_all
from tests.support.ordered import (
    applied,
    partition_of,
    send_in_order,
    wait_caught_up,
)
from tests.support.worker import WorkerEnv, running_worker

pytestmark = pytest.mark.integration

OUTPUTS = ("triggers", "holdout", "decisions")

# A small seeded shop: 300 customers over two days (about 2,500 events),
# most of them consenting, a few unsubscribes, bounces and erasures.
SHOP = SimulationConfig(
    seed=11,
    customers=300,
    start=datetime(2026, 10, 5, tzinfo=UTC),
    duration=timedelta(days=2),
)
REPLAY = EVENT_TIME | {"NUDGE_HOLDOUT_SHARE": "0.1", "NUDGE_HIGH_INTENT_THRESHOLD": "0.2"}
RESTART = EVENT_TIME | {"NUDGE_HOLDOUT_SHARE": "0"}


def output_records(env: WorkerEnv) -> dict[str, list[Record]]:
    return {name: read_all(env.bootstrap, env.topic(name)) for name in OUTPUTS}


def multiset(records: Iterable[Record]) -> Counter[tuple[bytes | None, bytes | None]]:
    """The (key, value) pairs of a topic, counted: order across partitions is not fixed."""
    return Counter((r.key, r.value) for r in records)


def loads(value: bytes | None) -> Any:
    return orjson.loads(value or b"null")


def values(records: Iterable[Record]) -> list[dict[str, Any]]:
    return [loads(r.value) for r in records]


# --- the in-process reference -------------------------------------------------


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None


class _Given(Settings):
    """Settings from the arguments only: the worker sees no other ``NUDGE_*`` variable."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: Any, *_others: Any, **_: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)


def settings_for(env: WorkerEnv, extra: Mapping[str, str]) -> Settings:
    """The worker's settings, built in this process from its variables only."""
    variables = env.variables() | dict(extra)
    fields = {name.removeprefix("NUDGE_").lower(): value for name, value in variables.items()}
    return _Given.model_validate(fields)


def reference(
    events: Iterable[tuple[TopicKind, bytes, bytes]], settings: Settings
) -> dict[str, Counter[tuple[bytes | None, bytes | None]]]:
    """What the shell decides applying the events in order, partition by partition, in memory.

    The worker's own adapter (:class:`streams.ingest.Ingestor`) over dicts
    and lists instead of tables and topics; what a worker that applies each
    partition in file order must publish.
    """
    sent: dict[str, Counter[tuple[bytes | None, bytes | None]]] = {n: Counter() for n in OUTPUTS}

    def sink(name: str) -> Any:
        async def collect(key: bytes | None, value: bytes) -> None:
            if name in sent:
                sent[name][(key, value)] += 1

        return collect

    store = CustomerStore(profiles={}, deadlines={}, pending={})
    partitions = Partitions(lateness=timedelta(seconds=settings.allowed_lateness_seconds))
    models = ModelRegistry(model_configs(settings), {})
    metrics = Metrics.create(CollectorRegistry())
    ingestors = {
        kind: Ingestor(
            kind=kind,
            limits=settings.decode_limits(),
            config=engine_config(settings),
            store=store,
            partitions=partitions,
            models=models.engine_models,
            sinks={d: sink(d.value) for d in Destination},
            dead_letter=sink("deadletter"),
            metrics=metrics,
        )
        for kind in TopicKind
    }

    async def apply_all() -> None:
        for offset, (kind, key, value) in enumerate(events):
            where = partition_of(key, settings.topic_partitions)
            message = _Message(kind.value, where, offset, time.time_ns() // 1_000_000, key, value)
            await ingestors[kind].handle([message])

    asyncio.run(apply_all())
    return sent


# --- the tests ------------------------------------------------------------------


def invalid(item: Invalid) -> None:
    raise AssertionError(f"the simulator wrote an invalid line: {item}")


class Collect:
    """An event sink that keeps what it is sent, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[TopicKind, bytes, bytes]] = []

    def send(self, kind: TopicKind, key: bytes, value: bytes) -> None:
        self.events.append((kind, key, value))

    def close(self) -> None:
        return None


def replay_through_a_worker(
    kafka_bootstrap: str, admin: Any, path: Path, log: Path, cached_profiles: int
) -> dict[str, list[Record]]:
    """Replay the file as ``nudge replay --ordered`` does, through a fresh worker; read outputs."""
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    cache = {"NUDGE_PROFILE_CACHE_CUSTOMERS": str(cached_profiles)}
    with running_worker(env, log, extra=REPLAY | cache):
        errors = io.StringIO()
        tally = replay_to_kafka(settings_for(env, REPLAY), path, errors=errors, ordered=True)
        wait_caught_up(admin, env)
    assert tally.invalid == 0, errors.getvalue()
    return output_records(env)


def test_the_same_file_replayed_twice_gives_the_same_triggers_and_decisions(
    kafka_bootstrap: str, kafka_admin: Any, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    publish(generate(SHOP), JsonLinesSink(path))  # what `nudge simulate --out` writes

    # The first worker keeps every profile decoded; the second only one, so
    # nearly every event reads its customer back from the table's bytes.
    first = replay_through_a_worker(kafka_bootstrap, kafka_admin, path, tmp_path / "1.log", 20_000)
    second = replay_through_a_worker(kafka_bootstrap, kafka_admin, path, tmp_path / "2.log", 1)

    # Each partition's messages come in a fixed order but the partitions
    # interleave differently each run, so each topic is compared as a
    # multiset of (key, value) messages: the same bytes, as often.
    for name in OUTPUTS:
        assert multiset(first[name]) == multiset(second[name]), name

    # And they are what the engine decides applying the file in order.
    settings = settings_for(WorkerEnv.fresh(kafka_bootstrap, partitions=4), REPLAY)
    read = Collect()
    replay(parse_file(path, settings.decode_limits()), read, report=invalid)
    assert len(read.events) > 2_000
    expected = reference(read.events, settings)
    for name in OUTPUTS:
        assert multiset(first[name]) == expected[name], name

    # Not vacuous: every outcome and trigger type the shop gives is in there.
    decisions = values(first["decisions"])
    outcomes = Counter(d["outcome"] for d in decisions)
    assert {"sent", "holdout", "suppressed", "capped"} <= set(outcomes), outcomes
    types = Counter(t["trigger_type"] for t in values(first["triggers"]))
    assert set(types) == {"browse_abandonment", "cart_abandonment", "high_intent"}, types


def test_pending_deadlines_survive_a_sigkill_and_an_erasure_drops_them(
    kafka_bootstrap: str, kafka_admin: Any, tmp_path: Path
) -> None:
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    t0 = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
    keep = [f"keep-{n}" for n in range(12)]
    erased_before = [f"gone-early-{n}" for n in range(4)]  # erased before the kill
    erased_after = [f"gone-late-{n}" for n in range(4)]  # erased after the restart

    def view(customer: str, at: datetime) -> Any:
        product = {"product_id": "sku-1", "price": "25.00", "currency": "EUR", "category": "hats"}
        return keyed_message(TopicKind.clickstream, "product_view", customer, at, **product)

    def erase(customer: str, at: datetime) -> Any:
        return keyed_message(TopicKind.customers, "customer_erased", customer, at)

    everyone = keep + erased_before + erased_after
    opening = [
        keyed_message(TopicKind.customers, "consent_changed", c, t0, channel="email", granted=True)
        for c in everyone
    ]
    opening += [view(c, t0 + timedelta(minutes=1)) for c in everyone]  # due at 10:01
    opening += [erase(c, t0 + timedelta(minutes=5)) for c in erased_before]

    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    with running_worker(env, first_log, extra=RESTART) as worker:
        send_in_order(env, first_log, opening)
        # Every event is committed, so its changes are in the changelogs: the
        # restarted worker gets the deadlines from there, not by reprocessing.
        wait_caught_up(kafka_admin, env)
        worker.kill()  # SIGKILL: no clean shutdown
        worker.wait()
    assert not read_all(kafka_bootstrap, env.topic("decisions"))  # nothing was due yet
    stored = latest_by_key(read_all(kafka_bootstrap, env.changelog("deadlines")))
    pending = {key.decode() for key, value in stored.items() if key and loads(value)["items"]}
    assert pending == set(keep + erased_after)  # the erasure emptied the others'

    # One event per partition, hours later, moves every partition's clock past 10:01.
    ticks: dict[int, str] = {}
    for n in range(1_000):
        ticks.setdefault(partition_of(f"tick-{n}".encode(), env.partitions), f"tick-{n}")
    later = t0 + timedelta(hours=3)
    closing = [erase(c, t0 + timedelta(minutes=20)) for c in erased_after]
    closing += [
        keyed_message(TopicKind.clickstream, "page_view", c, later, url="https://shop.example/")
        for c in ticks.values()
    ]
    with running_worker(env, second_log, extra=RESTART):
        send_in_order(env, second_log, closing)
        wait_caught_up(kafka_admin, env)
        # Nothing of the first run was applied again: the deadlines were restored.
        assert applied(env.web_port) == len(closing)

    triggers = values(read_all(kafka_bootstrap, env.topic("triggers")))
    decisions = values(read_all(kafka_bootstrap, env.topic("decisions")))
    assert sorted(t["customer_id"] for t in triggers) == sorted(keep)  # each fired once
    assert {t["trigger_type"] for t in triggers} == {"browse_abandonment"}
    assert sorted(d["customer_id"] for d in decisions) == sorted(keep)
    assert {d["outcome"] for d in decisions} == {"sent"}
