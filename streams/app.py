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

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from schemas import DeadLetter, TopicKind
from streams.ingest import Ingestor
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import ensure_topics, topic_specs


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


@dataclass(frozen=True)
class Nudge:
    """A built worker: the Faust app and the parts tests and commands reach for."""

    app: NudgeApp
    settings: Settings
    metrics: Metrics
    counts: Any  # faust Table[str, int]
    deadletter: Any  # faust Topic
    ingestors: dict[TopicKind, Ingestor]


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
        "web_host": settings.web_bind,
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
    counts = app.Table(
        "event-counts",
        default=int,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=int,
    )
    deadletter = app.topic(
        settings.topic_deadletter,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )

    async def send_dead_letter(key: bytes | None, record: DeadLetter) -> None:
        # Awaited so the dead letter is delivered before the offset can commit.
        await deadletter.send(key=key, value=record.to_bytes())

    ingestors: dict[TopicKind, Ingestor] = {}
    for kind_name, topic_name in settings.inbound_topics().items():
        kind = TopicKind(kind_name)
        ingestor = Ingestor(
            kind=kind,
            limits=settings.decode_limits(),
            counts=counts,
            dead_letter=send_dead_letter,
            metrics=metrics,
        )
        ingestors[kind] = ingestor
        topic = app.topic(
            topic_name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )
        app.agent(topic, name=f"ingest-{kind_name}")(_ingest_agent(ingestor))

    _add_metrics_page(app, metrics.registry)
    return Nudge(app, settings, metrics, counts, deadletter, ingestors)


def _ingest_agent(ingestor: Ingestor) -> Any:
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            await ingestor.handle(event.message)

    return ingest


def _add_metrics_page(app: faust.App, registry: CollectorRegistry) -> None:
    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp rejects a charset inside content_type=, so set the header.
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
