"""Plain kafka-python helpers the integration tests use to publish and read back."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def producer(bootstrap: str, *, max_request_size: int = 8 * 1024 * 1024) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=max_request_size, linger_ms=5
    )


def publish(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> int:
    """Send (topic, key, value) triples; wait for every acknowledgement."""
    sent = producer(bootstrap)
    futures = [sent.send(topic, key=key, value=value) for topic, key, value in messages]
    sent.flush()
    for future in futures:
        future.get(timeout=30)
    sent.close()
    return len(futures)


def read_all(bootstrap: str, topic: str, *, timeout: float = 30.0) -> list[Record]:
    """Everything in ``topic`` right now, from the start of every partition."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {timeout}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(
                    Record(m.topic, m.partition, m.offset, m.key, m.value) for m in batch
                )
        return records
    finally:
        consumer.close()


def latest_by_key(records: Iterable[Record]) -> dict[bytes | None, bytes | None]:
    """Fold a changelog the way compaction would: the last value per key wins."""
    table: dict[bytes | None, bytes | None] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        table[record.key] = record.value
    return table


def wait_for(condition: Any, *, timeout: float, interval: float = 0.5, what: str) -> Any:
    """Poll ``condition()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def topic_exists(bootstrap: str, topic: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return topic in consumer.topics()
    finally:
        consumer.close()
