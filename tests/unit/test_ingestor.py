"""The ingestion adapter: every message ends applied, skipped or dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas import TopicKind
from streams.core import reducer
from streams.core.profile import Profile, Tombstone
from streams.ingest import Ingestor
from streams.metrics import Metrics
from tests.unit.schema_samples import LIMITS, NOW, dumps, minimal

pytestmark = pytest.mark.unit


@dataclass
class Message:
    value: bytes | None
    key: bytes | None = b"cus-1"
    topic: str = "cart"
    partition: int = 2
    offset: int = 41
    timestamp: float = 1_714_564_800.0


@dataclass
class Recorder:
    sent: list[tuple[bytes | None, dict[str, Any]]]

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        self.sent.append((key, orjson.loads(value)))


def ingestor(kind: TopicKind = TopicKind.cart) -> tuple[Ingestor, Recorder, Recorder]:
    dead, changes = Recorder([]), Recorder([])
    profiles: dict[str, Profile | Tombstone] = {}
    adapter = Ingestor(
        kind=kind,
        limits=LIMITS,
        config=reducer.ProfileConfig(),
        profiles=profiles,
        dead_letter=dead,
        profile_changes=changes,
        metrics=Metrics.create(CollectorRegistry()),
        clock=lambda: NOW,
    )
    return adapter, dead, changes


def sample(adapter: Ingestor, name: str, **labels: str) -> float:
    value = adapter.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_valid_event_updates_the_profile_and_announces_its_segment() -> None:
    adapter, dead, changes = ingestor()
    await adapter.handle(Message(dumps(minimal("cart_add"))))
    profile = adapter.profiles["cus-1"]
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
    await adapter.handle(Message(raw))
    await adapter.handle(Message(raw, offset=42))
    profile = adapter.profiles["cus-1"]
    assert isinstance(profile, Profile)
    assert profile.events_applied == 1
    labels = {"topic": "cart", "reason": "duplicate_event"}
    assert sample(adapter, "nudge_events_skipped_total", **labels) == 1


async def test_undecodable_bytes_go_to_the_dead_letter_topic_whole() -> None:
    adapter, dead, _ = ingestor()
    await adapter.handle(Message(b"\xff\xfe not json"))
    [(key, letter)] = dead.sent
    assert key == b"cus-1"
    assert letter["reason"] == "not_utf8"
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("cart", 2, 41)
    assert letter["timestamp"] == datetime.fromtimestamp(1_714_564_800, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert adapter.profiles == {}
    labels = {"topic": "cart", "reason": "not_utf8"}
    assert sample(adapter, "nudge_events_deadlettered_total", **labels) == 1


async def test_an_event_keyed_by_another_customer_is_dead_lettered() -> None:
    adapter, dead, _ = ingestor()
    await adapter.handle(Message(dumps(minimal("cart_add")), key=b"someone-else"))
    assert [letter["reason"] for _, letter in dead.sent] == ["key_mismatch"]
    assert adapter.profiles == {}


async def test_an_exception_in_the_core_dead_letters_that_event_and_the_next_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter, dead, _ = ingestor()
    real_apply = reducer.apply

    def explode_on_cart_remove(state: Any, event: Any, config: Any) -> reducer.Step:
        if event.type == "cart_remove":
            raise ZeroDivisionError("boom")
        return real_apply(state, event, config)

    monkeypatch.setattr(reducer, "apply", explode_on_cart_remove)
    await adapter.handle(Message(dumps(minimal("cart_remove"))))
    await adapter.handle(Message(dumps(minimal("cart_add") | {"event_id": "evt-2"}), offset=42))
    [(_, letter)] = dead.sent
    assert letter["reason"] == "processing_error"
    assert "ZeroDivisionError: boom" in letter["detail"]
    assert letter["event_type"] == "cart_remove"
    profile = adapter.profiles["cus-1"]
    assert isinstance(profile, Profile)
    assert profile.events_applied == 1
