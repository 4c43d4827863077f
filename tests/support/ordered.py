"""Publishing events so a worker applies each partition's events in the order sent.

Faust consumes the inbound topics side by side, round-robin by message, not
merged by event time; tests that compare a worker's outputs with a reference
(replays, crashes) publish through :class:`InOrder`, which removes that
freedom. ``tests/integration/test_triggers_replay.py`` explains why it is
needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CoordinatorNotAvailableError
from kafka.partitioner.default import murmur2
from prometheus_client.parser import text_string_to_metric_families

from schemas import TopicKind
from tests.support.kafka_io import wait_for
from tests.support.worker import WorkerEnv, scrape


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (and Faust's table routing) gives ``key``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def applied(port: int) -> int:
    """Inbound messages the worker has finished with (applied, skipped or dead-lettered)."""
    done: float = 0.0
    for family in text_string_to_metric_families(scrape(port)):
        if family.name in ("nudge_events_consumed", "nudge_events_deadlettered"):
            done += sum(float(s.value) for s in family.samples if s.name.endswith("_total"))
    return int(done)


def wait_consuming(log: Path, timeout: float = 90.0) -> None:
    """Wait until the worker has its partitions and consumes from its committed offsets.

    Faust (0.15.3) resumes a newly assigned partition before it seeks it to
    the committed offset, so a message already waiting then can be handled
    twice. Harmless for the state (events are deduplicated), but it would
    throw :class:`InOrder`'s count off; sending only after "Worker ready"
    avoids it.
    """
    wait_for(
        lambda: "Worker ready" in log.read_text(errors="replace"),
        timeout=timeout,
        what="the worker's partitions to be assigned and recovered",
    )


class InOrder:
    """An event sink that makes the worker apply each partition's events in the order sent.

    Events are sent in runs; a run never holds events of two topics for one
    partition, so within a run Faust's interleaving of the topics cannot
    reorder a partition. Before an event that would break that rule, the run
    is flushed and the sink waits until the worker's count of handled
    messages (``/metrics``) says every event sent so far is applied. It
    speaks :class:`streams.sending.EventSink`, so ``nudge replay``'s own
    :func:`streams.replay.replay` can drive it. The worker (logging to
    ``log``) must have handled nothing before: the count is this sink's.
    """

    def __init__(self, env: WorkerEnv, log: Path, *, timeout: float = 60.0) -> None:
        self.env, self.timeout = env, timeout
        self.sent, self.runs = 0, 0
        self._base, self._counted = 0, 0  # the worker's count, and what it should add to it
        self.handled_again = 0  # messages restarted workers handled before counting afresh
        self._run: dict[int, str] = {}
        wait_consuming(log)
        self._producer = KafkaProducer(
            bootstrap_servers=env.bootstrap,
            linger_ms=1,
            acks="all",
            max_request_size=8 * 1024 * 1024,  # oversized garbage must reach the worker
        )

    def send(self, kind: TopicKind, key: bytes, value: bytes) -> None:
        topic = self.env.topic(kind.value)
        partition = partition_of(key, self.env.partitions)
        if self._run.get(partition, topic) != topic:
            self.settle()
        self._run[partition] = topic
        self._producer.send(topic, key=key, value=value, partition=partition)
        self.sent += 1
        self._counted += 1

    def settle(self) -> None:
        """Deliver the run and wait until the worker has applied all of it."""
        self._producer.flush(timeout=30)
        deadline = time.monotonic() + self.timeout
        while (done := applied(self.env.web_port) - self._base) < self._counted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker applied {done} of {self._counted} events")
            time.sleep(0.005)
        # More than sent: something was handled twice, and the count no longer
        # tells which events are applied, so the order is not guaranteed.
        assert done == self._counted, f"the worker handled {done}, {self._counted} were sent"
        self._run.clear()
        self.runs += 1

    def deliver(self) -> None:
        """Deliver what was sent, without waiting for the worker."""
        self._producer.flush(timeout=30)

    def restarted(self, admin: Any, log: Path) -> None:
        """Count afresh after the worker was restarted (now logging to ``log``).

        The new process handles again whatever its predecessor had not
        committed, so its count says nothing about the events sent so far:
        wait until the group has committed all of them, then count from there.
        """
        self.deliver()
        wait_consuming(log)
        wait_caught_up(admin, self.env, timeout=self.timeout)
        self._base, self._counted = applied(self.env.web_port), 0
        self.handled_again += self._base
        self._run.clear()

    def close(self) -> None:
        try:
            self.settle()
        finally:
            self._producer.close(timeout=10)


def send_in_order(
    env: WorkerEnv, log: Path, events: Iterable[tuple[TopicKind, bytes, bytes]]
) -> int:
    """Publish (kind, key, value) events through :class:`InOrder`; return the runs it took."""
    sink = InOrder(env, log)
    try:
        for kind, key, value in events:
            sink.send(kind, key, value)
    finally:
        sink.close()
    return sink.runs


def caught_up(admin: Any, env: WorkerEnv) -> bool:
    """Whether the worker committed every inbound message (so flushed all it produced).

    Faust commits an offset only after the producer has flushed what the
    message produced, and the worker's state before that, so a caught-up
    group has written all its outputs and state. A group still forming has
    no coordinator to ask yet: not caught up.
    """
    try:
        committed = admin.list_group_offsets({env.app_id: None}).get(env.app_id, {})
    except CoordinatorNotAvailableError:
        return False
    inbound = [env.topic(kind.value) for kind in TopicKind] + [env.topic("replay")]
    consumer = KafkaConsumer(bootstrap_servers=env.bootstrap)
    try:
        tps = [TopicPartition(t, p) for t in inbound for p in range(env.partitions)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return all(
        end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()
    )


def wait_caught_up(admin: Any, env: WorkerEnv, timeout: float = 60.0) -> None:
    wait_for(lambda: caught_up(admin, env), timeout=timeout, what="the group to commit everything")
