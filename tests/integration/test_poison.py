"""Poison at volume: a real worker takes garbage of every kind among valid events and carries on.

One message in ten is garbage, in a rotation through every kind the
generators in ``tests/support/events.py`` know: nesting far past any parser's
limit, numbers no double holds, 1 MiB strings, bytes that are not UTF-8, a
wrong type in every field of every event type, missing fields and keys,
events for customers already erased. The worker must apply every valid event,
dead-letter every invalid one exactly once with the reason expected, skip the
events about erased customers without recreating them, keep its memory
bounded and still consume afterwards.

``NUDGE_POISON_EVENTS`` sets the volume: 5,000 messages by default (the test
command), 50,000 with ``make poison``.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from schemas import DeadLetter
from tests.support.events import (
    BASE_TIME,
    ERASED,
    KINDS,
    Poison,
    encode,
    event_of_type,
    poison_message,
    valid_event,
)
from tests.support.kafka_io import producer, read_all, wait_for
from tests.support.worker import WorkerEnv, running_worker, scrape

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("NUDGE_POISON_EVENTS", "5000"))
GARBAGE_EVERY = 10
"""One message in ten is garbage."""
CUSTOMERS = 400
ERASED_CUSTOMERS = 20

RSS_CEILING_MIB = 1024
"""Peak resident memory allowed, whatever the volume.

A worker idles at about 170 MiB (Python, Faust, aiokafka, River, pydantic).
On top come the in-memory tables of the 420 customers here, the consumer's
prefetch (up to one ``max.message.bytes``, ~2.7 MiB, per partition and topic:
tens of MiB while 1 MiB messages are in flight) and the dead letters
buffered until the next commit (a 1 MiB message makes a 1.4 MiB dead
letter). Runs of 50,000 messages peaked at about 300-350 MiB; a gibibyte
leaves room for a slower or busier machine and still fails on a leak of the
garbage itself.
"""

RSS_GROWTH_MIB = 64
"""How much higher the worker's peak may be in the second half than in the first.

Both halves carry the same mix to the same customers, so the tables hardly
grow between them and the transient buffers (prefetched 1 MiB messages,
dead letters waiting for a commit) reach the same heights. Keeping what the
garbage brought in would show: the 80 messages of 1 MiB in the second half
of a 50,000-message run are more than this on their own.
"""

SECONDS_PER_EVENT = 0.02
"""Generous time per message: a worker here needs 1-2 ms."""


@dataclass(frozen=True)
class Sent:
    """Where one published message landed, and what must become of it."""

    topic: str
    partition: int
    offset: int
    customer: str | None
    poison: Poison | None
    digest: str


Message = tuple[str, bytes | None, bytes | None, str | None, Poison | None]
"""(topic, key, value, customer of a valid event, the poison if it is garbage)."""


def plan(
    env: WorkerEnv,
    rng: random.Random,
    customers: list[str],
    erased: list[str],
    first: int,
    count: int,
) -> list[Message]:
    """Messages ``first`` to ``first + count``: valid events, every tenth one garbage."""
    planned: list[Message] = []
    for n in range(first, first + count):
        at = BASE_TIME + timedelta(seconds=n)
        customer = rng.choice(customers)
        if n % GARBAGE_EVERY == GARBAGE_EVERY - 1:
            poison = poison_message(rng, customer, n // GARBAGE_EVERY, erased, at)
            planned.append((env.topic(poison.kind), poison.key, poison.value, None, poison))
        else:
            kind = KINDS[n % len(KINDS)]
            value = encode(valid_event(rng, kind, customer, at))
            planned.append((env.topic(kind), customer.encode(), value, customer, None))
    return planned


def publish_recorded(bootstrap: str, planned: list[Message]) -> list[Sent]:
    """Publish ``planned`` and return where each message landed."""
    sending = producer(bootstrap)
    try:
        pending = [
            (sending.send(topic, key=key, value=value), customer, poison, _digest(value))
            for topic, key, value, customer, poison in planned
        ]
        sending.flush()
        sent = []
        for future, customer, poison, digest in pending:
            meta = future.get(timeout=60)
            sent.append(Sent(meta.topic, meta.partition, meta.offset, customer, poison, digest))
        return sent
    finally:
        sending.close()


def _digest(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()


def metric_total(text: str, name: str, **labels: str) -> float:
    """Sum the samples of counter ``name`` (matching ``labels``) in a /metrics page."""
    total = 0.0
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def handled(port: int) -> int:
    """Messages the worker has finished with: applied or skipped, or dead-lettered."""
    text = scrape(port)
    consumed = metric_total(text, "nudge_events_consumed_total")
    return int(consumed + metric_total(text, "nudge_events_deadlettered_total"))


def profile(port: int, customer: str) -> dict[str, Any] | None:
    """The profile API's document for ``customer``; None while it answers 404 or 503."""
    url = f"http://127.0.0.1:{port}/customers/{customer}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            document: dict[str, Any] = orjson.loads(response.read())
            return document
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 503):
            return None
        raise


def applied(port: int, customer: str) -> int:
    document = profile(port, customer)
    if document is None or document["erased"]:
        return 0
    count: int = document["profile"]["events_applied"]
    return count


@dataclass
class RssSampler:
    """Samples a process's resident memory (VmRSS) from /proc while a run goes on."""

    pid: int
    interval: float = 0.2
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def now_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.now_kib())
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def peak_mib(self, since: int = 0) -> float:
        """The highest sample from the ``since``-th on, in MiB."""
        return max(self.samples[since:]) / 1024


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages in ``topic`` (the sum of its partitions' end offsets), without reading them."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@dataclass(frozen=True)
class Letter:
    """What a dead letter says, without the raw bytes it carries."""

    reason: str
    described: str
    digest: str


def dead_letters(bootstrap: str, topic: str) -> dict[tuple[str, int, int], list[Letter]]:
    """Every dead letter by source (topic, partition, offset), read one batch at a time.

    A full run dead-letters hundreds of MiB of garbage; only a digest of each
    raw value is kept.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        assigned = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        letters: dict[tuple[str, int, int], list[Letter]] = {}
        deadline = time.monotonic() + 300
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            assert time.monotonic() < deadline, "reading the dead letters took over 300 s"
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    letter = DeadLetter.from_bytes(record.value)
                    locations = " ".join(error.loc for error in letter.errors)
                    where = (letter.topic, letter.partition, letter.offset)
                    letters.setdefault(where, []).append(
                        Letter(
                            letter.reason.value,
                            f"{letter.detail} {locations}",
                            _digest(letter.raw_value()),
                        )
                    )
        return letters
    finally:
        consumer.close()


def erase(env: WorkerEnv, rng: random.Random, customers: list[str]) -> list[Message]:
    """Give each customer some personal data, then erase them (in order: one partition each)."""
    erasing: list[Message] = []
    for customer in customers:
        attributes = event_of_type(rng, "profile_attributes", customer, BASE_TIME)
        erased = event_of_type(rng, "customer_erased", customer, BASE_TIME + timedelta(seconds=1))
        for event in (attributes, erased):
            message = (env.topic("customers"), customer.encode(), encode(event), customer, None)
            erasing.append(message)
    return erasing


@pytest.mark.timeout(600 + EVENTS * SECONDS_PER_EVENT * 2)
def test_poison_at_volume_is_dead_lettered_and_the_worker_carries_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(20261123)
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    customers = [f"cust-{n:04d}" for n in range(CUSTOMERS)]
    erased = [f"gone-{n:03d}" for n in range(ERASED_CUSTOMERS)]
    halves = ((0, EVENTS // 2), (EVENTS // 2, EVENTS - EVENTS // 2))
    wait = 60 + EVENTS * SECONDS_PER_EVENT / 2

    started = time.monotonic()
    with running_worker(env, tmp_path / "worker.log") as worker:
        sampler = RssSampler(worker.pid)
        with sampler.running():
            idle_mib = sampler.now_kib() / 1024

            # Erased first, so that the garbage below finds tombstones.
            publish_recorded(kafka_bootstrap, erase(env, rng, erased))
            wait_for(
                lambda: all((profile(env.web_port, c) or {}).get("erased") for c in erased),
                timeout=60,
                what="every erased customer to be a tombstone",
            )

            sent: list[Sent] = []
            peaks: list[float] = []
            for first, count in halves:
                # Planned one half at a time: a half holds up to ~100 MiB of garbage.
                half = plan(env, rng, customers, erased, first, count)
                baseline, since = handled(env.web_port), len(sampler.samples)
                sent += publish_recorded(kafka_bootstrap, half)
                wait_for(
                    lambda half=half, baseline=baseline: (
                        handled(env.web_port) - baseline >= len(half)
                    ),
                    timeout=wait,
                    interval=1.0,
                    what=f"the worker to handle {len(half)} messages",
                )
                peaks.append(sampler.peak_mib(since))
                del half  # its values, before the next half is planned
            processed = time.monotonic() - started

            # Still consuming afterwards: one more valid event is applied.
            latecomer = customers[0]
            before = applied(env.web_port, latecomer)
            last = encode(valid_event(rng, "cart", latecomer, BASE_TIME + timedelta(days=1)))
            publish_recorded(
                kafka_bootstrap, [(env.topic("cart"), latecomer.encode(), last, latecomer, None)]
            )
            wait_for(
                lambda: applied(env.web_port, latecomer) == before + 1,
                timeout=60,
                what="the event published after the garbage",
            )
            assert worker.poll() is None, "the worker stopped"
        metrics = scrape(env.web_port)

        poison = [s for s in sent if s.poison is not None]
        expected_counts = Counter(s.customer for s in sent if s.poison is None)
        expected_counts[latecomer] += 1
        erased_events = [s for s in poison if s.poison and s.poison.reason == ERASED]
        rejected = {(s.topic, s.partition, s.offset): s for s in poison if s not in erased_events}

        # Every valid event applied, once, through the profile API.
        counts = {c: applied(env.web_port, c) for c in customers}
        wrong = {c: (n, expected_counts[c]) for c, n in counts.items() if n != expected_counts[c]}
        assert wrong == {}, "customer: (applied, published)"

        # Every invalid message dead-lettered exactly once, with the reason and bytes expected.
        deadletter_topic = env.topic("events.deadletter")
        wait_for(
            lambda: topic_size(kafka_bootstrap, deadletter_topic) >= len(rejected),
            timeout=120,
            what=f"{len(rejected)} dead letters",
        )
        letters = dead_letters(kafka_bootstrap, deadletter_topic)
        missing = [rejected[w].poison for w in set(rejected) - set(letters)]
        assert missing == [], "garbage not dead-lettered"
        assert sorted(set(letters) - set(rejected)) == [], "dead letters for valid messages"
        assert {w: len(c) for w, c in letters.items() if len(c) > 1} == {}, "dead-lettered twice"
        for where, source in rejected.items():
            assert source.poison is not None
            (letter,) = letters[where]
            label = source.poison.label
            assert letter.reason == source.poison.reason, (label, letter.described[:300])
            assert source.poison.named.lower() in letter.described.lower(), (label, letter)
            assert letter.digest == source.digest, label

        # Events about erased customers are skipped: counted, never stored, never dead-lettered.
        assert metric_total(metrics, "nudge_events_skipped_total", reason="erased") == len(
            erased_events
        )
        for customer in erased:
            erased_only = {"customer_id": customer, "erased": True, "erased_at": ANY}
            assert profile(env.web_port, customer) == erased_only
        outbound = read_all(kafka_bootstrap, env.topic("profiles"))
        for customer in erased:
            told = [
                orjson.loads(r.value)["type"]
                for r in sorted(outbound, key=lambda r: r.offset)
                if r.key == customer.encode() and r.value is not None
            ]
            assert told == ["segment_changed", "profile_erased"], customer
        for topic in ("triggers", "holdout", "training"):
            keys = {r.key for r in read_all(kafka_bootstrap, env.topic(topic))}
            assert not keys & {c.encode() for c in erased}, topic

        # Memory stayed bounded: a ceiling, and no growth from one half to the next.
        peak = sampler.peak_mib()
        by_reason = Counter(s.poison.reason for s in rejected.values() if s.poison)
        print(
            f"\npoison run: {len(sent)} messages, {len(poison)} garbage "
            f"({len(rejected)} dead-lettered, {len(erased_events)} for erased customers), "
            f"reasons {dict(sorted(by_reason.items()))}; "
            f"published and handled in {processed:.0f} s; RSS idle {idle_mib:.0f} MiB, "
            f"peak of each half {peaks[0]:.0f}/{peaks[1]:.0f} MiB, peak {peak:.0f} MiB"
        )
        assert peak < RSS_CEILING_MIB, f"peak RSS {peak:.0f} MiB"
        assert peaks[1] - peaks[0] < RSS_GROWTH_MIB, f"RSS peaks by half: {peaks}"
