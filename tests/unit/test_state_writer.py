"""Staged customer state and the order a commit writes it in.

The order is the crash guarantee (see :mod:`streams.commits`): outputs are
delivered before any state is written, and the profile, which dedupes a
redelivered event, is written last.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from online_models.labels import Pending
from schemas.triggers import TriggerType
from streams.commits import CommittingConsumer, StateWriter
from streams.core.engine import Deadlines, Result
from streams.core.profile import Profile, Tombstone, record_decided
from streams.core.triggers.base import Deadline
from streams.ingest import CustomerStore, Part

pytestmark = pytest.mark.unit

AT = datetime(2024, 5, 1, tzinfo=UTC)


class Recorded(dict[str, Any]):
    """A table that logs each assignment into a shared journal."""

    def __init__(self, name: str, journal: list[str]) -> None:
        super().__init__()
        self.name, self.journal = name, journal

    def __setitem__(self, key: str, value: Any) -> None:
        self.journal.append(f"{self.name}:{key}")
        super().__setitem__(key, value)


def store_with_journal() -> tuple[CustomerStore, list[str]]:
    journal: list[str] = []
    store = CustomerStore(
        profiles=Recorded("profiles", journal),
        deadlines=Recorded("deadlines", journal),
        pending=Recorded("pending", journal),
    )
    return store, journal


def profile(customer: str, applied: int) -> Profile:
    return Profile(
        customer_id=customer,
        first_seen=AT,
        last_seen=AT,
        segment="prospect",
        segment_as_of=AT,
        events_applied=applied,
    )


def step(store: CustomerStore, customer: str, *, applied: int, pending: bool = False) -> None:
    before = store.load(customer)
    after = Result(
        profile(customer, applied),
        Deadlines(customer_id=customer),
        Pending(customer_id=customer) if pending and before.pending is None else before.pending,
    )
    store.save(0, customer, before, after)


def test_a_saved_step_is_read_back_before_any_table_holds_it() -> None:
    store, journal = store_with_journal()
    step(store, "a", applied=1)
    state = store.profile("a")
    assert isinstance(state, Profile)
    assert state.events_applied == 1
    assert journal == []


def test_steps_between_commits_coalesce_into_one_write_per_part() -> None:
    store, journal = store_with_journal()
    for applied in range(1, 6):
        step(store, "a", applied=applied, pending=True)
    batch = store.take()
    for part in Part:
        store.write(batch, part, _assign)
    assert sorted(journal) == ["pending:a", "profiles:a"]
    assert store.profiles["a"] == profile("a", 5)


def test_a_step_after_take_is_staged_for_the_next_commit_and_wins_reads() -> None:
    store, _ = store_with_journal()
    step(store, "a", applied=1)
    store.take()
    step(store, "a", applied=2)
    assert store.profile("a") == profile("a", 2)
    assert set(store.staged) == {"a"}


def test_an_unchanged_step_stages_nothing() -> None:
    store, _ = store_with_journal()
    state = store.load("a")
    store.save(0, "a", state, state)
    assert store.staged == {}


def test_forgetting_a_partition_drops_its_staged_state_only() -> None:
    store, _ = store_with_journal()
    before = store.load("a")
    store.save(1, "a", before, Result(profile("a", 1), before.deadlines, None))
    store.save(
        2,
        "b",
        store.load("b"),
        Result(Tombstone(customer_id="b", erased_at=AT), Deadlines(customer_id="b"), None),
    )
    store.forget({1})
    assert set(store.staged) == {"b"}
    assert store.profile("a") is None


async def test_a_commit_delivers_outputs_then_writes_deadlines_and_labels_then_profiles() -> None:
    store, journal = store_with_journal()
    step(store, "a", applied=1, pending=True)
    before = store.load("b")
    deadlines = Deadlines(customer_id="b")
    store.save(0, "b", before, Result(profile("b", 1), deadlines, None))

    async def flush() -> None:
        journal.append("flush")

    await StateWriter(store, "clickstream", flush).before_commit()
    assert journal[0] == "flush"
    second_flush = journal.index("flush", 1)
    assert set(journal[1:second_flush]) == {"pending:a"}
    third_flush = journal.index("flush", second_flush + 1)
    assert set(journal[second_flush + 1 : third_flush]) == {"profiles:a", "profiles:b"}
    assert journal[third_flush + 1 :] == []  # no deadline was removed: nothing more to write
    assert store.staged == {}
    assert store.writing == {}


async def test_a_commit_with_nothing_staged_flushes_nothing() -> None:
    store, journal = store_with_journal()
    await StateWriter(store, "clickstream", _never).before_commit()
    assert journal == []


async def test_a_failed_flush_keeps_the_batch_for_the_next_commit() -> None:
    store, _ = store_with_journal()
    step(store, "a", applied=1)

    async def broken() -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        await StateWriter(store, "clickstream", broken).before_commit()
    assert store.profiles == {}
    step(store, "b", applied=1)
    batch = store.take()
    assert set(batch) == {"a", "b"}


def _assign(partition: int, table: MutableMapping[str, Any], key: str, value: Any) -> None:
    table[key] = value


async def _never() -> None:
    raise AssertionError("nothing staged, nothing to flush")


def test_a_message_no_agent_received_is_never_counted_as_done() -> None:
    skipped = ConsumerMessage("clickstream", 0, 41, 0.0, 0, None, None, b"{}", None)
    assert not skipped.tracked
    consumer: Any = object.__new__(CommittingConsumer)  # ack reads nothing else for it
    assert CommittingConsumer.ack(consumer, skipped) is False
    assert not skipped.acked


async def test_a_gap_before_a_message_never_counts_the_message_itself_as_done() -> None:
    """Offsets 41-44 never came (compacted); 45 came but no agent took it; 46 was handled."""
    from streams.app import build
    from streams.settings import Settings

    consumer: Any = build(Settings(app_id="nudge-unit-gap", topic_partitions=4)).app.consumer
    assert isinstance(consumer, CommittingConsumer)
    tp = TP("clickstream", 0)
    consumer._committed_offset[tp] = 41
    await consumer._add_gap(tp, 41, 45)  # as the fetch loop calls it: read 40, now 45
    consumer._acked[tp] = [46]
    assert consumer._new_offset(tp) == 45  # commit up to 45, so 45 is read again


async def test_faust_tables_get_their_changelog_records_in_bulk_in_the_commit_order() -> None:
    """Records go straight to the producer: raw key, the table's codec, the customer's partition."""
    from streams.app import build
    from streams.settings import Settings

    nudge = build(Settings(app_id="nudge-unit-writer", topic_partitions=4))
    store = nudge.store
    journal: list[str] = []

    async def send(
        topic: str, key: bytes, value: bytes, partition: int, timestamp: Any, headers: Any
    ) -> Any:
        journal.append(f"{topic.removeprefix('nudge-unit-writer-')}:{key.decode()}@{partition}")
        sent[key.decode(), topic] = value
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(RecordMetadata(topic, partition, len(journal)))
        return delivered

    async def flush() -> None:
        journal.append("flush")

    sent: dict[tuple[str, str], bytes] = {}
    producer: Any = nudge.app.producer
    producer.send = send
    before = store.load("a")
    store.save(3, "a", before, Result(profile("a", 1), before.deadlines, Pending(customer_id="a")))
    await StateWriter(store, "clickstream", flush).before_commit()

    assert journal == [
        "flush",
        "labels-changelog:a@3",
        "flush",
        "profiles-changelog:a@3",
        "flush",
    ]
    assert sent["a", "nudge-unit-writer-profiles-changelog"] == profile("a", 1).to_bytes()
    # The profile table holds the changelog's bytes; the decoded profile stays in the cache.
    assert nudge.profiles.data["a"] == profile("a", 1).to_bytes()
    assert store.profiles.decoded == 1  # type: ignore[attr-defined]
    assert store.profiles["a"] == profile("a", 1)
    assert store.staged == {}
    assert store.writing == {}


class RecordMetadata(NamedTuple):
    topic: str
    partition: int
    offset: int


async def test_a_customer_forgotten_while_a_commit_writes_is_not_written() -> None:
    store, journal = store_with_journal()
    step(store, "a", applied=1)
    before = store.load("b")
    store.save(1, "b", before, Result(profile("b", 1), before.deadlines, None))

    async def flush_then_revoke() -> None:
        journal.append("flush")
        store.forget({1})  # a rebalance while the commit waits for the broker

    await StateWriter(store, "clickstream", flush_then_revoke).before_commit()
    assert "profiles:b" not in journal
    assert "profiles:a" in journal


def deadline(customer: str, key: str, minute: int) -> Deadline:
    return Deadline(
        customer_id=customer,
        rule=TriggerType.browse_abandonment,
        key=key,
        due_at=AT + timedelta(minutes=minute),
    )


class Crash(Exception):
    """The worker dies at this flush."""


def writer_crashing_at(store: CustomerStore, flushes: int, journal: list[str]) -> StateWriter:
    async def flush() -> None:
        journal.append("flush")
        if journal.count("flush") == flushes:
            raise Crash

    return StateWriter(store, "clickstream", flush)


@pytest.mark.parametrize("crash_at_flush", [2, 3, 4, None])
async def test_a_fired_deadline_outlives_every_crash_until_the_profile_records_it(
    crash_at_flush: int | None,
) -> None:
    """Deadlines a step removed are written only after the profile that remembers why.

    A deadline ``fired`` is gone from the step's deadlines and its decision is in
    the step's profile; ``later`` is new. Whatever flush the worker dies at,
    the tables hold either the fired deadline (it fires again on restart) or a
    profile that records the firing (it then offers nothing): never neither.
    """
    store, journal = store_with_journal()
    fired, later = deadline("a", "s1", 60), deadline("a", "s2", 90)
    store.deadlines["a"] = Deadlines(customer_id="a", items=(fired,))
    store.profiles["a"] = profile("a", 1)
    journal.clear()
    before = store.load("a")
    decided = record_decided(profile("a", 2), TriggerType.browse_abandonment, "s1")
    store.save(0, "a", before, Result(decided, Deadlines(customer_id="a", items=(later,)), None))

    writer = writer_crashing_at(store, crash_at_flush or 0, journal)
    if crash_at_flush is None:
        await writer.before_commit()
    else:
        with pytest.raises(Crash):
            await writer.before_commit()

    kept = {d.key for d in store.deadlines["a"].items}
    recorded = decided_keys_of(store.profiles["a"])
    assert "s1" in kept or "s1" in recorded
    assert "s2" in kept or crash_at_flush == 2  # new deadlines are written before the profile
    if crash_at_flush is None:
        assert kept == {"s2"}
        assert recorded == {"s1"}
        assert journal.index("profiles:a") < len(journal) - 1 - journal[::-1].index("deadlines:a")


def decided_keys_of(state: Profile | Tombstone) -> set[str]:
    assert isinstance(state, Profile)
    return set(state.decided_keys.get(TriggerType.browse_abandonment, ()))


def test_keeping_adds_back_what_a_step_dropped_and_nothing_else() -> None:
    fired, moved, new = deadline("a", "s1", 60), deadline("a", "s2", 90), deadline("a", "s3", 5)
    earlier = Deadlines(customer_id="a", items=(fired, moved))
    moved_later = deadline("a", "s2", 120)
    now = Deadlines(customer_id="a", items=(new, moved_later))
    kept = now.keeping(earlier)
    assert [(d.key, d.due_at) for d in kept.items] == [
        ("s3", new.due_at),
        ("s1", fired.due_at),
        ("s2", moved_later.due_at),
    ]
    assert now.keeping(None) is now
    assert now.keeping(Deadlines(customer_id="a", items=(new,))) is now
