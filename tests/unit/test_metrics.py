"""The metrics object: conventional names, a registry per test, scrape-time collectors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.metrics import (
    FAUST_OFFSET_KEY,
    MODELS,
    ConsumerLagCollector,
    Metrics,
    PartitionLag,
    faust_consumer_lag,
    faust_table_entries,
)
from streams.models import model_configs
from streams.settings import Settings

pytestmark = pytest.mark.unit

TOPICS = {"clickstream": "clicks-x", "cart": "cart-x", "email": "email-x", "customers": "cust-x"}

EXPECTED_FAMILIES = {
    "nudge_build_info": "gauge",
    "nudge_events_consumed": "counter",
    "nudge_events_deadlettered": "counter",
    "nudge_events_skipped": "counter",
    "nudge_event_processing_seconds": "histogram",
    "nudge_late_events": "counter",
    "nudge_watermark_delay_seconds": "gauge",
    "nudge_trigger_decisions": "counter",
    "nudge_event_to_trigger_seconds": "histogram",
    "nudge_attribution_conversions": "counter",
    "nudge_model_auc": "gauge",
    "nudge_model_log_loss": "gauge",
    "nudge_model_calibration_error": "gauge",
    "nudge_model_examples_learned": "counter",
    "nudge_model_snapshot_timestamp_seconds": "gauge",
    "nudge_model_drift": "counter",
    "nudge_consumer_stalls": "counter",
    "nudge_consumer_lag_messages": "gauge",
    "nudge_table_entries": "gauge",
}

# Units Prometheus names end with; anything else must be a plain ratio or count.
BASE_UNITS = ("_seconds", "_bytes", "_messages", "_entries", "_ratio")
NON_BASE_UNITS = ("_milliseconds", "_ms", "_minutes", "_hours", "_kilobytes", "_percent")


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(
        self,
        highwaters: dict[TP, int | None],
        committed: dict[TP, int | None],
        read: dict[TP, int | None] | None = None,
    ) -> None:
        self._highwaters = highwaters
        self._committed_offset = committed
        self._read_offset = read or {}

    def assignment(self) -> set[TP]:
        return set(self._highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self._highwaters[tp]


class FakeApp:
    def __init__(self, consumer: Any = None, actives: Iterable[TP] = ()) -> None:
        if consumer is not None:
            self._consumer = consumer
        self.assignor = FakeAssignor(set(actives))


class FakeAssignor:
    def __init__(self, actives: set[TP]) -> None:
        self._actives = actives

    def assigned_actives(self) -> set[TP]:
        return self._actives


def exposition(registry: CollectorRegistry) -> dict[str, Any]:
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    family = exposition(registry)[name]
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if sample.name == name or sample.name == f"{name}_total"
    }


def worker_metrics(app: Any, table: Any) -> Metrics:
    metrics = Metrics.create(CollectorRegistry())
    metrics.watch_worker(app, table, TOPICS)
    return metrics


def test_every_family_is_exposed_even_before_anything_updates_it() -> None:
    metrics = worker_metrics(FakeApp(), table=object())
    families = exposition(metrics.registry)
    # The text format shows a labelled counter's creation time (here the drift
    # counter's zero children) as a gauge family of its own, `<name>_created`.
    nudge = {
        name: family.type
        for name, family in families.items()
        if name.startswith("nudge_") and not name.endswith("_created")
    }
    assert nudge == EXPECTED_FAMILIES


def test_names_follow_prometheus_conventions() -> None:
    metrics = worker_metrics(FakeApp(), table=object())
    for name, family in exposition(metrics.registry).items():
        if not name.startswith("nudge_"):
            continue
        assert name == name.lower()
        assert not name.endswith(NON_BASE_UNITS), name
        assert not any(unit in name for unit in NON_BASE_UNITS), name
        if family.type == "histogram":
            assert name.endswith(BASE_UNITS), name
        assert family.documentation, name
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE nudge_events_consumed_total counter" in text


def test_each_test_gets_its_own_registry_and_a_registry_takes_one_set() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics.create(first).events_consumed.labels("cart", "cart_add").inc()
    Metrics.create(second)
    assert samples(second, "nudge_events_consumed") == {}
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics.create(first)


def test_labelled_metrics_take_the_labels_dashboards_use() -> None:
    metrics = Metrics.create(CollectorRegistry())
    metrics.trigger_decisions.labels(trigger_type="cart_abandonment", outcome="sent").inc()
    metrics.event_to_trigger.labels(trigger_type="cart_abandonment").observe(0.4)
    metrics.attribution_conversions.labels(trigger_type="cart_abandonment", arm="holdout").inc()
    metrics.model_auc.labels(model="purchase").set(0.71)
    metrics.model_log_loss.labels(model="purchase").set(0.4)
    metrics.model_calibration_error.labels(model="purchase").set(0.03)
    metrics.model_examples_learned.labels(model="purchase").inc(5)
    metrics.model_snapshot_timestamp.labels(model="purchase").set(1_790_000_000)
    metrics.model_drift.labels(model="purchase").inc()
    metrics.watermark_delay.labels(partition="3").set(12.5)
    metrics.late_events.labels(topic="cart").inc()
    families = exposition(metrics.registry)
    assert families["nudge_model_auc"].samples[0].value == 0.71
    assert families["nudge_trigger_decisions"].samples[0].labels == {
        "trigger_type": "cart_abandonment",
        "outcome": "sent",
    }
    buckets = [
        s for s in families["nudge_event_to_trigger_seconds"].samples if s.name.endswith("_bucket")
    ]
    assert {s.labels["le"] for s in buckets} >= {"0.5", "60.0", "+Inf"}


def test_drift_starts_at_zero_for_every_model_the_worker_scores_with() -> None:
    # A zero sample per model, so the first drift shows in increase() and the
    # drift panel and alert read a series before any drift happened.
    assert set(MODELS) == set(model_configs(Settings()))
    metrics = Metrics.create(CollectorRegistry())
    assert samples(metrics.registry, "nudge_model_drift") == {
        (("model", "purchase"),): 0.0,
        (("model", "engagement"),): 0.0,
    }
    metrics.model_drift.labels(model="purchase").inc()
    assert samples(metrics.registry, "nudge_model_drift")[(("model", "purchase"),)] == 1.0


def test_lag_is_highwater_minus_committed_per_assigned_inbound_partition() -> None:
    cart0, cart1, email0 = TP("cart-x", 0), TP("cart-x", 1), TP("email-x", 0)
    changelog = TP("nudge-profiles-changelog", 0)
    consumer = FakeConsumer(
        highwaters={cart0: 120, cart1: 40, email0: 10, changelog: 999},
        committed={cart0: 100, cart1: None, email0: None, changelog: 1},
        # cart1 has read offset 29 but no commit yet; email0 has neither.
        read={cart1: 29},
    )
    metrics = worker_metrics(FakeApp(consumer), table=object())
    assert samples(metrics.registry, "nudge_consumer_lag_messages") == {
        (("partition", "0"), ("topic", "cart")): 20.0,
        (("partition", "1"), ("topic", "cart")): 10.0,
    }


def test_lag_is_never_negative_and_skips_partitions_without_a_highwater() -> None:
    cart0, cart1 = TP("cart-x", 0), TP("cart-x", 1)
    consumer = FakeConsumer(highwaters={cart0: 5, cart1: None}, committed={cart0: 7, cart1: 3})
    read = faust_consumer_lag(FakeApp(consumer), TOPICS)
    assert list(read()) == [PartitionLag("cart", 0, 0)]


def test_no_consumer_yet_means_no_samples_and_a_failing_read_never_fails_the_scrape() -> None:
    assert list(faust_consumer_lag(FakeApp(), TOPICS)()) == []

    def broken() -> list[PartitionLag]:
        raise RuntimeError("rebalancing")

    registry = CollectorRegistry()
    registry.register(ConsumerLagCollector(broken))
    assert "nudge_consumer_lag_messages" in exposition(registry)


class FakeTable:
    def __init__(self, store: Any, changelog: str = "nudge-profiles-changelog") -> None:
        if store is not None:
            self._data = store
        self.changelog_topic = FakeTopic(changelog)


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class FakeMemoryStore:
    def __init__(self, keys: int) -> None:
        self.data = {f"cust-{n}": n for n in range(keys)}

    def __len__(self) -> int:
        return len(self.data)


class FakeRocksDB:
    """rocksdict's ``Rdict``: an estimate of keys, Faust's offset key among them."""

    def __init__(self, keys: int, *, with_offset: bool) -> None:
        self.keys = keys + int(with_offset)
        self.with_offset = with_offset

    def property_int_value(self, name: str) -> int:
        assert name == "rocksdb.estimate-num-keys"
        return self.keys

    def get(self, key: bytes) -> bytes | None:
        return b"41" if key == FAUST_OFFSET_KEY and self.with_offset else None


class FakeRocksStore:
    def __init__(self, dbs: dict[int, FakeRocksDB]) -> None:
        self._dbs = dbs


def test_memory_store_reports_its_exact_size_for_all_partitions() -> None:
    metrics = worker_metrics(FakeApp(), FakeTable(FakeMemoryStore(17)))
    assert samples(metrics.registry, "nudge_table_entries") == {
        (("partition", "all"), ("table", "profiles")): 17.0
    }


def test_rocksdb_store_reports_each_active_partition_less_the_offset_key() -> None:
    store = FakeRocksStore(
        {
            0: FakeRocksDB(10, with_offset=True),
            1: FakeRocksDB(4, with_offset=False),
            2: FakeRocksDB(99, with_offset=True),  # a standby partition: not ours to count
        }
    )
    changelog = "nudge-profiles-changelog"
    app = FakeApp(actives=[TP(changelog, 0), TP(changelog, 1), TP("cart-x", 2)])
    read = faust_table_entries(app, FakeTable(store))
    assert [(e.partition, e.entries) for e in read()] == [("0", 10), ("1", 4)]


def test_a_table_without_a_store_yet_has_no_samples() -> None:
    assert list(faust_table_entries(FakeApp(), FakeTable(None))()) == []


def test_a_cached_child_is_the_labelled_series_and_counts_into_the_registry() -> None:
    metrics = Metrics.create(CollectorRegistry())
    first = metrics.child(metrics.events_consumed, "clickstream", "page_view")
    assert metrics.child(metrics.events_consumed, "clickstream", "page_view") is first
    assert first is metrics.events_consumed.labels("clickstream", "page_view")
    first.inc()
    metrics.child(metrics.events_skipped, "clickstream", "page_view").inc(2)
    sample = metrics.registry.get_sample_value
    labels = {"topic": "clickstream", "type": "page_view"}
    assert sample("nudge_events_consumed_total", labels) == 1.0
    assert (
        sample("nudge_events_skipped_total", {"topic": "clickstream", "reason": "page_view"}) == 2.0
    )
