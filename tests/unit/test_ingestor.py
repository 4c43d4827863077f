"""The ingestion adapter: every message ends applied, skipped or dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas import TopicKind
from streams.core import engine
from streams.core.engine import Destination, EngineConfig
from streams.core.policy import PolicyConfig
from streams.core.profile import Profile
from streams.ingest import CustomerStore, Ingestor, Partitions
from streams.metrics import Metrics
from streams.models import ModelRegistry, model_configs
from streams.settings import Settings
from tests.unit.schema_samples import LIMITS, NOW, dumps, minimal

pytestmark = pytest.mark.unit


@dataclass
class Message:
    value: bytes | None
    key: bytes | None = b"cus-1"
    topic: str = "cart"
    partition: int = 2
    offset: int = 41
    timestamp: int | None = 1_714_564_800_000


@dataclass
class Recorder:
    sent: list[tuple[bytes | None, dict[str, Any]]]

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        self.sent.append((key, orjson.loads(value)))


def ingestor(kind: TopicKind = TopicKind.cart) -> tuple[Ingestor, Recorder, Recorder]:
    dead, changes = Recorder([]), Recorder([])
    others = {destination: Recorder([]) for destination in Destination}
    others[Destination.profiles] = changes
    store = CustomerStore(profiles={}, deadlines={}, pending={})
    models = ModelRegistry(model_configs(Settings()), {})
    adapter = Ingestor(
        kind=kind,
        limits=LIMITS,
        config=EngineConfig(policy=PolicyConfig(holdout_share=0)),
        store=store,
        partitions=Partitions(lateness=timedelta(minutes=5)),
        models=models.engine_models,
        sinks=others,
        dead_letter=dead,
        metrics=Metrics.create(CollectorRegistry()),
        clock=lambda: NOW,
    )
    return adapter, dead, changes


def sample(adapter: Ingestor, name: str, **labels: str) -> float:
    value = adapter.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_valid_event_updates_the_profile_and_announces_its_segment() -> None:
    adapter, dead, changes = ingestor()
    await adapter.handle([Message(dumps(minimal("cart_add")))])
    profile = adapter.store.profile("cus-1")
    assert isinstance(profile, Profile)
    assert profile.events_applied == 1
    assert dead.sent == []
    assert [(key, change["type"]) for key, change in changes.sent] == [
        (b"cus-1", "segment_changed")
    ]
    labels = {"topic": "cart", "type": "cart_add"}
    assert sample(adapter, "nudge_events_consumed_total", **labels) == 1


async def test_a_redelivered_event_is_counted_as_skipped_not_applied() -> None:
    adapter, _, _ = ingestor()
    raw = dumps(minimal("cart_add"))
    await adapter.handle([Message(raw)])
    await adapter.handle([Message(raw, offset=42)])
    profile = adapter.store.profile("cus-1")
    assert isinstance(profile, Profile)
    assert profile.events_applied == 1
    labels = {"topic": "cart", "reason": "duplicate_event"}
    assert sample(adapter, "nudge_events_skipped_total", **labels) == 1


async def test_undecodable_bytes_go_to_the_dead_letter_topic_whole() -> None:
    adapter, dead, _ = ingestor()
    await adapter.handle([Message(b"\xff\xfe not json")])
    [(key, letter)] = dead.sent
    assert key == b"cus-1"
    assert letter["reason"] == "not_utf8"
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("cart", 2, 41)
    assert letter["timestamp"] == datetime.fromtimestamp(1_714_564_800, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert adapter.store.profile("cus-1") is None
    labels = {"topic": "cart", "reason": "not_utf8"}
    assert sample(adapter, "nudge_events_deadlettered_total", **labels) == 1


async def test_an_event_keyed_by_another_customer_is_dead_lettered() -> None:
    adapter, dead, _ = ingestor()
    await adapter.handle([Message(dumps(minimal("cart_add")), key=b"someone-else")])
    assert [letter["reason"] for _, letter in dead.sent] == ["key_mismatch"]
    assert adapter.store.profile("cus-1") is None


async def test_an_exception_in_the_core_dead_letters_that_event_and_the_next_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter, dead, _ = ingestor()
    real_step = engine.on_event

    def explode_on_cart_remove(*args: Any) -> engine.Result:
        if args[3].type == "cart_remove":
            raise ZeroDivisionError("boom")
        return real_step(*args)

    monkeypatch.setattr(engine, "on_event", explode_on_cart_remove)
    await adapter.handle([Message(dumps(minimal("cart_remove")))])
    await adapter.handle([Message(dumps(minimal("cart_add") | {"event_id": "evt-2"}), offset=42)])
    [(_, letter)] = dead.sent
    assert letter["reason"] == "processing_error"
    assert "ZeroDivisionError: boom" in letter["detail"]
    assert letter["event_type"] == "cart_remove"
    profile = adapter.store.profile("cus-1")
    assert isinstance(profile, Profile)
    assert profile.events_applied == 1


async def test_a_later_event_moves_the_clock_and_fires_the_due_browse_trigger() -> None:
    adapter, _, _ = ingestor(TopicKind.clickstream)
    customers = ingestor(TopicKind.customers)[0]
    customers.store = adapter.store
    customers.partitions = adapter.partitions
    customers.sinks = adapter.sinks
    consent = minimal("consent_changed") | {"event_id": "c", "occurred_at": "2024-05-01T09:00:00Z"}
    await customers.handle([Message(dumps(consent), topic="customers")])
    view = minimal("product_view") | {"event_id": "v", "occurred_at": "2024-05-01T10:00:00Z"}
    await adapter.handle([Message(dumps(view), topic="clickstream")])
    triggers = adapter.sinks[Destination.triggers]
    assert isinstance(triggers, Recorder)
    assert triggers.sent == []
    # 11:06 minus 5 minutes of lateness passes the 11:00 deadline.
    later = minimal("page_view") | {"event_id": "p", "occurred_at": "2024-05-01T11:06:00Z"}
    await adapter.handle([Message(dumps(later), topic="clickstream", offset=43)])
    [(key, trigger)] = triggers.sent
    assert key == b"cus-1"
    assert trigger["trigger_type"] == "browse_abandonment"
    labels = {"trigger_type": "browse_abandonment", "outcome": "sent"}
    assert sample(adapter, "nudge_trigger_decisions_total", **labels) == 1


async def test_a_failing_due_deadline_is_logged_and_the_event_still_applies(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, dead, _ = ingestor(TopicKind.clickstream)
    view = minimal("product_view") | {"event_id": "v", "occurred_at": "2024-05-01T10:00:00Z"}
    await adapter.handle([Message(dumps(view), topic="clickstream")])

    def broken(*args: Any) -> engine.Result:
        raise ZeroDivisionError("a corrupt deadline")

    monkeypatch.setattr(engine, "on_deadline", broken)
    later = minimal("page_view") | {"event_id": "p", "occurred_at": "2024-05-01T11:06:00Z"}
    await adapter.handle([Message(dumps(later), topic="clickstream", offset=43)])
    assert "due work failed for customer 'cus-1'" in caplog.text
    assert dead.sent == []
    profile = adapter.store.profile("cus-1")
    assert isinstance(profile, Profile)
    assert profile.events_applied == 2


async def test_a_failure_before_the_core_dead_letters_the_event_instead_of_losing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter, dead, _ = ingestor()

    def broken(customer_id: str) -> engine.Result:
        raise OSError("the table's store is unreadable")

    monkeypatch.setattr(adapter.store, "load", broken)
    await adapter.handle([Message(dumps(minimal("cart_add")))])
    [(_, letter)] = dead.sent
    assert letter["reason"] == "processing_error"
    assert "OSError: the table's store is unreadable" in letter["detail"]
