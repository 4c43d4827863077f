"""Workers starting together create Nudge's topics once, and refuse mismatched ones."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from streams.settings import Settings
from streams.topics import TopicMismatchError, ensure_topics, topic_specs

pytestmark = pytest.mark.integration


def settings_with_unique_topics(partitions: int, suffix: str) -> Settings:
    names = {
        f"topic_{role}": f"{role}-{suffix}"
        for role in (
            "clickstream",
            "cart",
            "email",
            "customers",
            "replay",
            "deadletter",
            "profiles",
            "triggers",
            "holdout",
            "decisions",
            "training",
            "clock",
        )
    }
    app_id = f"nudge-{suffix}"  # its table changelogs are created too
    return Settings(topic_partitions=partitions, app_id=app_id, **names)  # type: ignore[arg-type]


def test_concurrent_workers_create_every_topic_exactly_once(kafka_bootstrap: str) -> None:
    settings = settings_with_unique_topics(3, uuid.uuid4().hex[:8])
    specs = topic_specs(settings)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: ensure_topics(kafka_bootstrap, specs), range(3)))
    created = [name for result in results for name in result]
    assert sorted(created) == sorted(spec.name for spec in specs)
    assert ensure_topics(kafka_bootstrap, specs) == []


def test_a_topic_with_another_partition_count_stops_start_up(kafka_bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    ensure_topics(kafka_bootstrap, topic_specs(settings_with_unique_topics(2, suffix)))
    with pytest.raises(TopicMismatchError, match="has 2 partitions, Nudge needs 4"):
        ensure_topics(kafka_bootstrap, topic_specs(settings_with_unique_topics(4, suffix)))
