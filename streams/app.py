"""The one wiring place: settings in, a ready Faust app with its parts out.

Nothing else builds topics, tables, metrics or agents, and nothing else reads
settings from the environment (the CLI calls ``load_settings`` and hands the
result here), so a test can build a complete worker from a ``Settings``
value and a fresh metrics registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import faust
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent
from prometheus_client import CollectorRegistry

from online_models.labels import Pending
from online_models.trainer import SnapshotPolicy
from schemas import TopicKind
from streams.batches import BatchHandler, BatchingTransport
from streams.codecs import StoredCodec
from streams.commits import StateWriter, SteadyFlowControl
from streams.core.engine import Deadlines, Destination, EngineConfig
from streams.core.policy import PolicyConfig
from streams.core.profile_view import profile_document
from streams.core.reducer import ProfileConfig
from streams.core.triggers.base import TriggerConfig
from streams.ingest import CustomerStore, Ingestor, Partitions, Sink, utc_now
from streams.kafka_security import broker_credentials, kafka_python_options
from streams.logs import logging_config
from streams.metrics import Metrics
from streams.models import ModelRegistry, TrainerHost, model_configs
from streams.profile_cache import ProfileCache
from streams.settings import Settings
from streams.topics import ensure_topics, topic_specs
from streams.watchdog import watch_for_stalls
from streams.web import add_metrics_page, add_profile_api


class TopicCreatingApp(faust.App):
    """A Faust app that creates Nudge's missing topics (or stops on mismatched ones) first."""

    nudge_settings: Settings

    async def on_first_start(self) -> None:
        """Create missing topics (or stop on mismatched ones), then start as usual."""
        settings = self.nudge_settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.create_topics:
            await asyncio.to_thread(
                ensure_topics,
                settings.bootstrap_servers,
                topic_specs(settings),
                client_options=kafka_python_options(settings),
            )
        await super().on_first_start()


class NudgeApp(TopicCreatingApp):
    """A Faust app: creates topics, consumes inbound topics in batches, writes state at commits.

    Inbound records reach the ingestors through :mod:`streams.batches`;
    customer state is written just before each offset commit
    (:mod:`streams.commits`).
    """

    state_writer: StateWriter
    batch_handlers: dict[str, BatchHandler]

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()
        consumer.before_commit = self.state_writer.before_commit
        consumer.batch_handlers = self.batch_handlers
        return consumer

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        """Flow control that never drops queued messages on a resume (see SteadyFlowControl)."""
        return SteadyFlowControl(loop=self.loop)


class CustomerTable(faust.Table[str, Any]):
    """A per-customer table: raw utf-8 keys, values through a codec (or raw bytes).

    Faust derives a table's serializers from its key and value types and
    builds the changelog topic from them when the table is registered; they
    are set here, before registration, so the changelog is written and read
    back with the same codec (set afterwards, the changelog kept JSON and
    recovery failed with only a warning). Raw keys are the bytes producers
    key by, so Faust's table routing hashes a customer to the partition of
    their events. ``on_restore`` sees every restored record with its
    partition and stored value, so the due index is rebuilt from the
    changelog and a cache in front of the table drops what it replaced.
    """

    def __init__(
        self,
        app: faust.App,
        *,
        codec: StoredCodec | None,
        on_restore: Callable[[int, str, Any], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.key_serializer = "raw"
        self.value_serializer = codec if codec is not None else "raw"
        self._on_restore = on_restore

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        """Restore as Faust does, then tell ``on_restore`` about each record.

        The value passed on is the one the store now holds, read back rather
        than decoded a second time (a restore is bound by decoding).
        """
        events = list(batch)
        super().apply_changelog_batch(events)
        stored = self.data
        for event in events:
            message = event.message
            if message.key is not None:
                key = message.key.decode()
                self._on_restore(message.partition, key, stored.get(key))


class SnapshotTable(faust.GlobalTable):
    """Model snapshots by model name, read in full by every worker.

    Its changelog is named after the workers' app id (``owner``) whatever
    app holds the table, so a ``nudge trainer`` (its own app id) writes the
    very changelog the workers read. Faust reads a global table's changelog
    only during recovery unless every partition is also a standby
    (``synchronize_all_active_partitions``); such a partition is then both
    active and standby, and Faust buffers what it reads as it buffers a
    recovery, applying ``recovery_buffer_size`` records at once (1,000 by
    default), so that is 1 here. Without both, a worker other than the
    trainer's kept scoring with the snapshot it had at start.
    """

    def __init__(self, app: faust.App, *, owner: str, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.key_serializer = "raw"
        self.value_serializer = "raw"
        self._owner = owner

    def _changelog_topic_name(self) -> str:
        return f"{self._owner}-{self.name}-changelog"


def snapshot_table(app: faust.App, settings: Settings) -> Any:
    """Register the model snapshot table (one partition, raw model names and blobs)."""
    return app.tables.add(
        SnapshotTable(
            app,
            owner=settings.app_id,
            name="model-snapshots",
            beacon=app.tables.beacon,
            partitions=1,
            key_type=str,  # restored keys come back as str, as they were written
            value_type=bytes,
            # Faust's app.GlobalTable() passes is_global; the class alone does not.
            is_global=True,
            # Records read after recovery are applied as they come (see the class doc).
            recovery_buffer_size=1,
            # Read on after recovery too: the trainer's snapshots come from
            # another worker, or from another consumer group (nudge trainer).
            synchronize_all_active_partitions=True,
        )
    )


def trainer_host(settings: Settings, snapshots: Any, metrics: Metrics) -> TrainerHost:
    """Build the trainer that learns from the training topic and publishes to ``snapshots``."""
    return TrainerHost(
        configs=model_configs(settings),
        snapshots=snapshots,
        policy=SnapshotPolicy(settings.snapshot_every_examples, settings.snapshot_every_seconds),
        metrics=metrics,
    )


def add_trainer(app: faust.App, settings: Settings, trainer: TrainerHost) -> None:
    """Learn from the training topic in ``app`` (one partition: one trainer at a time)."""
    training = _raw_topic(app, settings.topic_training, 1)
    app.agent(training, name="train", concurrency=1)(_train_agent(trainer))


@dataclass(frozen=True)
class Nudge:
    """A built worker: the Faust app and the parts tests and commands reach for."""

    app: NudgeApp
    settings: Settings
    metrics: Metrics
    profiles: Any  # faust Table[str, bytes]: each profile as its changelog holds it
    store: CustomerStore
    registry: ModelRegistry
    ingestors: dict[TopicKind | None, Ingestor]


def profile_config(settings: Settings) -> ProfileConfig:
    """Build the reducer's configuration from settings."""
    return ProfileConfig(
        business_tz=ZoneInfo(settings.business_time_zone),
        dedupe_window=settings.dedupe_window,
    )


def engine_config(settings: Settings) -> EngineConfig:
    """Build the engine's configuration (profile, rules, policy, models) from settings."""
    models = model_configs(settings)
    return EngineConfig(
        profile=profile_config(settings),
        triggers=TriggerConfig(
            browse_wait=timedelta(minutes=settings.browse_wait_minutes),
            cart_wait=timedelta(minutes=settings.cart_wait_minutes),
            cart_min_value=Decimal(str(settings.cart_min_value)),
            high_intent_threshold=settings.high_intent_threshold,
            tier_vip_above=settings.tier_vip_above,
            tier_discount_from=settings.tier_discount_from,
        ),
        policy=PolicyConfig(
            cap_count=settings.cap_count,
            cap_window=timedelta(hours=settings.cap_window_hours),
            require_granted_consent=settings.require_granted_consent,
            holdout_share=settings.holdout_share,
        ),
        purchase_model=models["purchase"],
        engagement_model=models["engagement"],
        salt=settings.experiment_salt,
    )


def faust_options(settings: Settings) -> dict[str, Any]:
    """Translate Nudge's settings into Faust's, with safe defaults for production."""
    return {
        "broker": [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        "broker_credentials": broker_credentials(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "autodiscover": False,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "topic_disable_leader": True,
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": settings.consumer_session_timeout_seconds,
        "broker_heartbeat_interval": max(settings.consumer_session_timeout_seconds / 10, 0.5),
        "broker_rebalance_timeout": settings.consumer_session_timeout_seconds,
        "broker_commit_interval": settings.commit_interval_seconds,
        "consumer_auto_offset_reset": settings.auto_offset_reset,
        "logging_config": logging_config(
            settings.log_format, secrets=settings.secrets(), repeat_burst=settings.log_repeat_burst
        ),
        "producer_max_request_size": settings.deadletter_max_message_bytes + 64 * 1024,
        "consumer_max_fetch_size": settings.deadletter_max_message_bytes,
        "web_bind": settings.web_bind,
        "web_host": settings.web_advertised_host or settings.web_bind,
        "web_port": settings.web_port,
        # Faust's built-in pages would expose table contents (customer data)
        # and internals; Nudge serves only the pages it defines.
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        **settings.faust_tuning(),
    }


def build(settings: Settings, registry: CollectorRegistry | None = None) -> Nudge:
    """Build a worker from settings; ``registry`` defaults to a fresh one."""
    app = NudgeApp(settings.app_id, **faust_options(settings))
    app.nudge_settings = settings
    app.batch_handlers = {}
    metrics = Metrics.create(registry if registry is not None else CollectorRegistry())
    config = engine_config(settings)
    partitions = Partitions(lateness=timedelta(seconds=settings.allowed_lateness_seconds))

    def restored(partition: int, customer: str, value: Any) -> None:
        if isinstance(value, Deadlines):
            partitions.due.add(partition, value.next_due(), customer)
        elif isinstance(value, Pending):
            partitions.due.add(partition, value.next_horizon_end, customer)

    def customer_table(
        name: str, codec: StoredCodec | None, on_restore: Callable[[int, str, Any], None]
    ) -> Any:
        table = CustomerTable(
            app,
            name=name,
            codec=codec,
            on_restore=on_restore,
            beacon=app.tables.beacon,
            partitions=settings.topic_partitions,
            key_type=str,
        )
        return app.tables.add(table)

    # Profiles are kept as their changelog bytes, decoded on use (see streams.profile_cache).
    profiles = customer_table("profiles", None, lambda _p, c, _v: decoded.invalidate(c))
    decoded = ProfileCache(profiles, capacity=settings.profile_cache_customers)
    store = CustomerStore(
        profiles=decoded,
        deadlines=customer_table(
            "deadlines", StoredCodec(Deadlines.from_bytes, Deadlines), restored
        ),
        pending=customer_table("labels", StoredCodec(Pending.from_bytes, Pending), restored),
    )
    app.state_writer = StateWriter(store, settings.topic_clickstream, app.producer.flush)
    snapshots = snapshot_table(app, settings)
    models = ModelRegistry(model_configs(settings), snapshots, metrics)

    # Sends are buffered; a commit flushes the producer before it commits the
    # offsets, so what a message produced is written before it counts as done.
    outbound = settings.outbound_topics()
    sinks = {destination: _sink(app, outbound[destination.value]) for destination in Destination}
    send_dead_letter = _sink(app, settings.topic_deadletter)

    ingestors: dict[TopicKind | None, Ingestor] = {}
    for label, topic_name in settings.consumed_topics().items():
        kind = None if label == "replay" else TopicKind(label)
        ingestors[kind] = Ingestor(
            kind=kind,
            limits=settings.decode_limits(),
            config=config,
            store=store,
            partitions=partitions,
            models=models.engine_models,
            sinks=sinks,
            dead_letter=send_dead_letter,
            metrics=metrics,
        )
        # Subscribed without an agent: the consumer hands its records to the ingestor.
        app.topics.add(_raw_topic(app, topic_name, settings.topic_partitions))
        app.batch_handlers[topic_name] = ingestors[kind].handle

    _add_clock(app, settings, ingestors[TopicKind.clickstream])
    _forget_on_revoke(app, settings, store, partitions, decoded)
    if settings.train_in_worker:
        add_trainer(app, settings, trainer_host(settings, snapshots, metrics))

    metrics.watch_worker(app, profiles, settings.consumed_topics())
    metrics.watch_profile_cache(decoded)
    watch_for_stalls(app, settings.consumed_topics().values(), settings.stall_seconds, metrics)
    add_metrics_page(app, metrics.registry)
    add_profile_api(
        app,
        profiles,
        lookup=store.profile,
        render=lambda state, as_of: profile_document(state, as_of, config.profile),
        token=settings.api_token,
        clock=utc_now,
    )
    return Nudge(app, settings, metrics, profiles, store, models, ingestors)


def build_trainer(
    settings: Settings, registry: CollectorRegistry | None = None
) -> TopicCreatingApp:
    """Build the trainer as a process of its own, for workers with ``train_in_worker`` off.

    Its app id (and so its consumer group) is ``<app id>-trainer``: a member
    subscribed to the training topic alone must not join the workers' group,
    whose assignor hands every member the same co-partitioned topics. It
    publishes to the workers' snapshot changelog (:class:`SnapshotTable`)
    and serves ``/metrics`` (the model metrics) on the web port of its settings.
    """
    app = TopicCreatingApp(f"{settings.app_id}-trainer", **faust_options(settings))
    app.nudge_settings = settings
    metrics = Metrics.create(registry if registry is not None else CollectorRegistry())
    add_trainer(app, settings, trainer_host(settings, snapshot_table(app, settings), metrics))
    add_metrics_page(app, metrics.registry)
    return app


def _sink(app: faust.App, topic: str) -> Sink:
    """Send to ``topic`` through the producer, partitioned by key as every producer is.

    Straight to the producer rather than through Faust's ``Topic.send``:
    these are raw bytes, and its per-message layers (a future message,
    callbacks, serializer lookups) cost more than the rest of the send.
    """
    producer = app.producer

    async def send(key: bytes | None, value: bytes) -> None:
        await producer.send(topic, key, value, None, None, None)

    return send


def _add_clock(app: faust.App, settings: Settings, ingestor: Ingestor) -> None:
    """Tick every owned partition with wall time so deadlines fire on quiet partitions."""
    clock_topic = _raw_topic(app, settings.topic_clock, settings.topic_partitions)

    async def on_tick(stream: Any) -> None:
        async for event in stream.events():
            await ingestor.tick(event.message.partition, utc_now())

    app.agent(clock_topic, name="clock")(on_tick)
    if not settings.wall_clock:
        return
    inbound = settings.topic_clickstream

    @app.timer(interval=settings.clock_tick_seconds)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        for tp in app.consumer.assignment():
            if tp.topic == inbound:
                await clock_topic.send(value=b"", partition=tp.partition)


def _forget_on_revoke(
    app: faust.App,
    settings: Settings,
    store: CustomerStore,
    partitions: Partitions,
    decoded: ProfileCache,
) -> None:
    """Drop what the worker kept about partitions another worker now owns.

    The commit Faust makes while revoking has written their staged state;
    what is left belongs to events whose offsets were not committed, which
    the new owner applies again. Decoded profiles are dropped too: if a
    partition comes back, its restore brings what others wrote meanwhile.
    The due index is kept: a partition that comes back without a recovery
    would otherwise never fire its deadlines, and a stale entry costs one
    look at the stored state.
    """
    inbound = set(settings.consumed_topics().values())

    async def revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        numbers = {tp.partition for tp in revoked if tp.topic in inbound}
        store.forget(numbers)
        if numbers:
            decoded.forget_decoded()
        for number in numbers:
            partitions.forget_clock(number)

    signal: Any = app.on_partitions_revoked
    signal.connect(revoked)


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)


def _train_agent(trainer: TrainerHost) -> Any:
    async def train(stream: Any) -> None:
        async for value in stream:
            trainer.learn(value)

    return train
