"""The one wiring place: settings in, a ready Faust app with its parts out.

Nothing else builds topics, tables, metrics or agents, and nothing else reads
settings from the environment (the CLI calls ``load_settings`` and hands the
result here), so a test can build a complete worker from a ``Settings``
value and a fresh metrics registry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import faust
from prometheus_client import CollectorRegistry

from schemas import TopicKind
from streams.codecs import ProfileStateCodec
from streams.core.profile import Profile, Tombstone
from streams.core.profile_view import profile_document
from streams.core.reducer import ProfileConfig
from streams.ingest import Ingestor, utc_now
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import ensure_topics, topic_specs
from streams.web import add_metrics_page, add_profile_api


class NudgeApp(faust.App):
    """A Faust app that creates Nudge's topics before it subscribes to them."""

    nudge_settings: Settings

    async def on_first_start(self) -> None:
        """Create missing topics (or stop on mismatched ones), then start as usual."""
        settings = self.nudge_settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.create_topics:
            await asyncio.to_thread(
                ensure_topics, settings.bootstrap_servers, topic_specs(settings)
            )
        await super().on_first_start()


class ProfileTable(faust.Table[str, Profile | Tombstone]):
    """The profile table: raw utf-8 keys, values through :class:`ProfileStateCodec`.

    Faust derives a table's serializers from its key and value types and
    builds the changelog topic from them when the table is registered; they
    are set here, before registration, so the changelog is written and read
    back with the same codec. Raw keys are the bytes producers key by, so
    Faust's table routing hashes a customer to the partition of their events.
    """

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.key_serializer = "raw"
        self.value_serializer = ProfileStateCodec()


@dataclass(frozen=True)
class Nudge:
    """A built worker: the Faust app and the parts tests and commands reach for."""

    app: NudgeApp
    settings: Settings
    metrics: Metrics
    profiles: Any  # faust Table[str, Profile | Tombstone]
    ingestors: dict[TopicKind, Ingestor]


def profile_config(settings: Settings) -> ProfileConfig:
    """Build the reducer's configuration from settings."""
    return ProfileConfig(
        business_tz=ZoneInfo(settings.business_time_zone),
        dedupe_window=settings.dedupe_window,
    )


def faust_options(settings: Settings) -> dict[str, Any]:
    """Translate Nudge's settings into Faust's, with safe defaults for production."""
    return {
        "broker": [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
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
    }


def build(settings: Settings, registry: CollectorRegistry | None = None) -> Nudge:
    """Build a worker from settings; ``registry`` defaults to a fresh one."""
    app = NudgeApp(settings.app_id, **faust_options(settings))
    app.nudge_settings = settings
    metrics = Metrics.create(registry if registry is not None else CollectorRegistry())
    config = profile_config(settings)
    profiles: ProfileTable = app.tables.add(  # type: ignore[assignment]
        ProfileTable(
            app,
            name="profiles",
            beacon=app.tables.beacon,
            partitions=settings.topic_partitions,
            key_type=str,
        )
    )
    # Sends are buffered; a commit flushes the producer before it commits the
    # offsets, so what a message produced is written before it counts as done.
    deadletter = _raw_topic(app, settings.topic_deadletter, settings)
    profile_changes = _raw_topic(app, settings.topic_profiles, settings)

    async def send_dead_letter(key: bytes | None, value: bytes) -> None:
        await deadletter.send(key=key, value=value)

    async def send_profile_change(key: bytes | None, value: bytes) -> None:
        await profile_changes.send(key=key, value=value)

    ingestors: dict[TopicKind, Ingestor] = {}
    for kind_name, topic_name in settings.inbound_topics().items():
        kind = TopicKind(kind_name)
        ingestors[kind] = Ingestor(
            kind=kind,
            limits=settings.decode_limits(),
            config=config,
            profiles=profiles,
            dead_letter=send_dead_letter,
            profile_changes=send_profile_change,
            metrics=metrics,
        )
        topic = _raw_topic(app, topic_name, settings)
        app.agent(topic, name=f"ingest-{kind_name}")(_ingest_agent(ingestors[kind]))

    add_metrics_page(app, metrics.registry)
    add_profile_api(
        app,
        profiles,
        render=lambda state, as_of: profile_document(state, as_of, config),
        token=settings.api_token,
        clock=utc_now,
    )
    return Nudge(app, settings, metrics, profiles, ingestors)


def _raw_topic(app: faust.App, name: str, settings: Settings) -> Any:
    return app.topic(
        name, key_serializer="raw", value_serializer="raw", partitions=settings.topic_partitions
    )


def _ingest_agent(ingestor: Ingestor) -> Any:
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            await ingestor.handle(event.message)

    return ingest
