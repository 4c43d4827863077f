"""The worker's Prometheus metrics, built against a registry passed in.

One object holds every metric so agents receive what they count as an
argument, and each test can build a fresh ``CollectorRegistry`` instead of
fighting over module-level globals.

Names follow Prometheus' conventions: base units in the name (``_seconds``,
``_messages``), ``_total`` on counters, one metric per measured quantity with
its dimensions as labels. The dashboards in ``deploy/grafana/`` and the rules
in ``deploy/prometheus/rules/`` refer to these names; a test checks that every
name they use is defined here (or recorded by a rule).

A labelled metric exposes a series once code calls ``.labels(...)``. The
drift counter starts at zero for every model instead: drift is rare, and
without a zero sample its first increment would not show in ``increase()``
and its panel and alert would read nothing until then.

A worker is one process (Faust runs its agents on one event loop), so the
default ``CollectorRegistry`` is exact; ``prometheus_client``'s multiprocess
mode would only be needed for several processes behind one ``/metrics``
page. Scale out is more workers, each scraped on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

M = TypeVar("M", bound=MetricWrapperBase)

# Per-event work is tens of microseconds; a slow event is a millisecond or more.
PROCESSING_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)

# From the moment a trigger became due (its event, or its deadline) to the
# send: sub-second when healthy, minutes when a partition is stuck.
EVENT_TO_TRIGGER_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
    3600.0,
)

ARMS = ("treatment", "holdout")
"""Experiment arms of ``nudge_attribution_conversions_total``."""

DECISION_OUTCOMES = ("sent", "suppressed", "capped", "holdout", "deferred")
"""Outcomes of ``nudge_trigger_decisions_total`` (the policy's decisions)."""

STALL_ACTIONS = ("unstick", "exit")
"""Actions of ``nudge_consumer_stalls_total`` (``streams.watchdog.Action``, bar ``none``)."""

MODELS = ("purchase", "engagement")
"""Models every worker scores with (``streams.models.model_configs``), for ``model`` labels."""


@dataclass(frozen=True)
class Metrics:
    """Everything a Nudge worker counts.

    Updating code calls ``.labels(...)`` then ``.inc()``, ``.set()`` or
    ``.observe()``; :meth:`create` already holds the drift counter at zero for
    each of :data:`MODELS`.
    """

    registry: CollectorRegistry
    # Ingestion (streams/ingest.py).
    events_consumed: Counter
    events_deadlettered: Counter
    events_skipped: Counter
    event_processing: Histogram
    # Event time (the watermark, issue 5).
    late_events: Counter
    watermark_delay: Gauge
    # Triggers and policy (issue 5).
    trigger_decisions: Counter
    event_to_trigger: Histogram
    attribution_conversions: Counter
    # Online models (issue 4).
    model_auc: Gauge
    model_log_loss: Gauge
    model_calibration_error: Gauge
    model_examples_learned: Counter
    model_snapshot_timestamp: Gauge
    model_drift: Counter
    # The stall watchdog (streams/watchdog.py).
    consumer_stalls: Counter
    _children: dict[tuple[int, tuple[str, ...]], Any] = field(
        default_factory=dict, repr=False, compare=False
    )

    def child(self, metric: M, *labels: str) -> M:
        """Return ``metric.labels(*labels)``, looked up once per label set.

        ``labels()`` validates the values and takes a lock on every call,
        a few microseconds that counted on every event; the child it returns
        for a label set never changes, so the hot paths keep it here.
        """
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return cast(M, found)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register Nudge's metrics on ``registry``."""
        build = Info("nudge_build", "The running Nudge version.", registry=registry)
        build.info({"version": _version()})
        metrics = cls(
            registry=registry,
            events_consumed=Counter(
                "nudge_events_consumed_total",
                "Inbound events decoded, validated and applied, by topic kind and event type.",
                ["topic", "type"],
                registry=registry,
            ),
            events_deadlettered=Counter(
                "nudge_events_deadlettered_total",
                "Inbound messages sent to the dead-letter topic, by topic kind and reason.",
                ["topic", "reason"],
                registry=registry,
            ),
            events_skipped=Counter(
                "nudge_events_skipped_total",
                "Valid events that changed nothing (duplicate event or order, erased customer).",
                ["topic", "reason"],
                registry=registry,
            ),
            event_processing=Histogram(
                "nudge_event_processing_seconds",
                "Wall time to decode, validate and apply one inbound message.",
                ["topic"],
                buckets=PROCESSING_BUCKETS,
                registry=registry,
            ),
            late_events=Counter(
                "nudge_late_events_total",
                "Events behind their partition's watermark: applied, but fire no passed deadline.",
                ["topic"],
                registry=registry,
            ),
            watermark_delay=Gauge(
                "nudge_watermark_delay_seconds",
                "Wall clock minus the partition's event-time watermark.",
                ["partition"],
                registry=registry,
            ),
            trigger_decisions=Counter(
                "nudge_trigger_decisions_total",
                "Policy decisions on candidate triggers, by trigger type and outcome "
                "(sent, suppressed, capped, holdout, deferred).",
                ["trigger_type", "outcome"],
                registry=registry,
            ),
            event_to_trigger=Histogram(
                "nudge_event_to_trigger_seconds",
                "From the event time that made a trigger due (its event or deadline) to its "
                "hand-over to the producer.",
                ["trigger_type"],
                buckets=EVENT_TO_TRIGGER_BUCKETS,
                registry=registry,
            ),
            attribution_conversions=Counter(
                "nudge_attribution_conversions_total",
                "Orders credited to a trigger within the attribution window, by trigger type "
                "and experiment arm (treatment, holdout).",
                ["trigger_type", "arm"],
                registry=registry,
            ),
            model_auc=Gauge(
                "nudge_model_auc",
                "Rolling ROC AUC of the model's progressive validation (predict, then learn).",
                ["model"],
                registry=registry,
            ),
            model_log_loss=Gauge(
                "nudge_model_log_loss",
                "Rolling log loss of the model's progressive validation.",
                ["model"],
                registry=registry,
            ),
            model_calibration_error=Gauge(
                "nudge_model_calibration_error",
                "Rolling expected calibration error (mean |predicted - observed| over bins).",
                ["model"],
                registry=registry,
            ),
            model_examples_learned=Counter(
                "nudge_model_examples_learned_total",
                "Labelled examples the model has learned from.",
                ["model"],
                registry=registry,
            ),
            model_snapshot_timestamp=Gauge(
                "nudge_model_snapshot_timestamp_seconds",
                "Creation time (Unix seconds) of the model snapshot this process scores with "
                "or last published; its age is time() minus this.",
                ["model"],
                registry=registry,
            ),
            model_drift=Counter(
                "nudge_model_drift_total",
                "Concept drifts the model's detector (ADWIN on the loss) has signalled.",
                ["model"],
                registry=registry,
            ),
            consumer_stalls=Counter(
                "nudge_consumer_stalls_total",
                "Inbound partitions found with messages waiting and no commit for "
                "NUDGE_STALL_SECONDS, by what the watchdog did (unstick, then exit).",
                ["action"],
                registry=registry,
            ),
        )
        for model in MODELS:
            metrics.model_drift.labels(model)  # a zero sample, so the first drift shows
        for action in STALL_ACTIONS:
            metrics.consumer_stalls.labels(action)  # likewise: a stall is rare
        return metrics

    def watch_worker(self, app: Any, table: Any, topics: Mapping[str, str]) -> None:
        """Report a Faust worker's consumer lag and profile table size at scrape time.

        ``topics`` maps each inbound topic kind to its topic name, as
        ``Settings.inbound_topics()`` gives it; lag is reported for those
        topics only, labelled by kind like every other ingestion metric.
        """
        self.registry.register(ConsumerLagCollector(faust_consumer_lag(app, topics)))
        self.registry.register(TableEntriesCollector("profiles", faust_table_entries(app, table)))

    def watch_profile_cache(self, cache: CacheReads) -> None:
        """Report the profile cache's hits, misses and size at scrape time."""
        self.registry.register(ProfileCacheCollector(cache))


class PartitionLag(NamedTuple):
    """How far a consumer is behind on one partition."""

    topic: str
    partition: int
    messages: int


class PartitionEntries(NamedTuple):
    """How many keys a table holds for one partition (``"all"`` when a store can't tell)."""

    partition: str
    entries: int


class ConsumerLagCollector(Collector):
    """``nudge_consumer_lag_messages{topic,partition}``: log end offset minus committed offset.

    The reading is done by ``read`` when Prometheus scrapes, so the number is
    as fresh as the consumer's last fetch and costs nothing between scrapes.
    A failing read yields no samples rather than a failed scrape.
    """

    def __init__(self, read: Callable[[], Iterable[PartitionLag]]) -> None:
        self._read = read

    def describe(self) -> Iterator[Metric]:
        """Name the family without reading the consumer (registration checks names)."""
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        """Read every assigned inbound partition's lag."""
        family = self._family()
        for lag in _safely(self._read, "consumer lag"):
            family.add_metric([lag.topic, str(lag.partition)], lag.messages)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "nudge_consumer_lag_messages",
            "Messages in an assigned inbound partition not yet committed by this worker.",
            labels=["topic", "partition"],
        )


class TableEntriesCollector(Collector):
    """``nudge_table_entries{table,partition}``: keys held for the partitions this worker owns."""

    def __init__(self, table: str, read: Callable[[], Iterable[PartitionEntries]]) -> None:
        self._table = table
        self._read = read

    def describe(self) -> Iterator[Metric]:
        """Name the family without reading the store."""
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        """Count the table's keys per active partition."""
        family = self._family()
        for entry in _safely(self._read, f"{self._table} table size"):
            family.add_metric([self._table, entry.partition], entry.entries)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "nudge_table_entries",
            "Keys (customers, tombstones included) a table holds for this worker's active "
            "partitions; RocksDB stores report their estimate, per partition.",
            labels=["table", "partition"],
        )


class CacheReads(Protocol):
    """What :class:`ProfileCacheCollector` reads: counts kept by the cache itself."""

    hits: int
    misses: int

    @property
    def decoded(self) -> int:
        """Customers held decoded now."""
        ...


class ProfileCacheCollector(Collector):
    """The profile cache's reads and size, read from the cache at scrape time.

    The cache counts with plain integers on the hot path; a scrape turns them
    into counters, so a read costs no metric lookup.
    """

    def __init__(self, cache: CacheReads) -> None:
        self._cache = cache

    def describe(self) -> Iterator[Metric]:
        """Name the families without reading the cache."""
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        """Report hits, misses and customers held decoded."""
        hits, misses, decoded = self._families()
        hits.add_metric([], self._cache.hits)
        misses.add_metric([], self._cache.misses)
        decoded.add_metric([], self._cache.decoded)
        yield from (hits, misses, decoded)

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "nudge_profile_cache_hits",
                "Profile reads answered by a decoded profile held in memory.",
            ),
            CounterMetricFamily(
                "nudge_profile_cache_misses",
                "Profile reads that decoded the stored bytes (customers not seen lately).",
            ),
            GaugeMetricFamily(
                "nudge_profile_cache_customers",
                "Customers whose profile this worker holds decoded (NUDGE_PROFILE_CACHE_CUSTOMERS "
                "at most).",
            ),
        )


def _safely(read: Callable[[], Iterable[Any]], what: str) -> list[Any]:
    try:
        return list(read())
    except Exception:  # a scrape must not fail because a rebalance is under way
        log.debug("could not read %s for /metrics", what, exc_info=True)
        return []


def faust_consumer_lag(app: Any, topics: Mapping[str, str]) -> Callable[[], Iterator[PartitionLag]]:
    """Read lag from a Faust app's consumer: ``highwater(tp)`` minus the committed offset.

    Faust keeps the offsets it committed per partition (``_committed_offset``,
    Kafka's meaning: the next offset to read); before a first commit, the
    offset after the last message read stands in. Partitions with neither,
    or whose high-water mark is not fetched yet, are left out.
    """
    kind_of = {name: kind for kind, name in topics.items()}

    def read() -> Iterator[PartitionLag]:
        # `app.consumer` would build a consumer when there is none; only read one.
        consumer = app.__dict__.get("_consumer")
        if consumer is None:
            return
        committed: Mapping[Any, int | None] = consumer._committed_offset
        read_offsets: Mapping[Any, int | None] = consumer._read_offset
        for tp in sorted(consumer.assignment()):
            kind = kind_of.get(tp.topic)
            if kind is None:
                continue  # changelogs and other internal topics
            highwater = consumer.highwater(tp)
            done = committed.get(tp)
            if done is None:
                last = read_offsets.get(tp)
                done = None if last is None else last + 1
            if highwater is None or done is None:
                continue
            yield PartitionLag(kind, tp.partition, max(highwater - done, 0))

    return read


ROCKSDB_KEY_ESTIMATE = "rocksdb.estimate-num-keys"
FAUST_OFFSET_KEY = b"__faust\0offset__"
"""Faust's RocksDB store keeps each partition's changelog offset under this key."""


def faust_table_entries(app: Any, table: Any) -> Callable[[], Iterator[PartitionEntries]]:
    """Count a Faust table's keys: per active partition with RocksDB, in all with memory.

    RocksDB keeps one database per partition and an estimate of its key
    count (counting exactly would read every key at every scrape). The memory
    store keeps one dict for every partition, so its exact size is reported
    as partition ``"all"``.
    """

    def read() -> Iterator[PartitionEntries]:
        store = table.__dict__.get("_data")  # `table.data` would create a store
        if store is None:
            return
        databases = getattr(store, "_dbs", None)
        if databases is None:
            yield PartitionEntries("all", len(store))
            return
        actives = {(tp.topic, tp.partition) for tp in app.assignor.assigned_actives()}
        changelog = table.changelog_topic.get_topic_name()
        for partition, db in sorted(databases.items()):
            if (changelog, partition) in actives:
                yield PartitionEntries(str(partition), _estimate_keys(db))

    return read


def _estimate_keys(db: Any) -> int:
    """RocksDB's own key-count estimate for one partition, less Faust's offset key."""
    if hasattr(db, "property_int_value"):  # rocksdict
        estimate = db.property_int_value(ROCKSDB_KEY_ESTIMATE) or 0
    else:  # python-rocksdb
        raw = db.get_property(ROCKSDB_KEY_ESTIMATE.encode())
        estimate = int(raw) if raw else 0
    offset_stored = db.get(FAUST_OFFSET_KEY) is not None
    return max(estimate - int(offset_stored), 0)


def _version() -> str:
    try:
        return metadata.version("nudge")
    except metadata.PackageNotFoundError:
        return "unknown"
