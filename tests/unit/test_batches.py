"""Batch delivery: slices in order, acks only for finished slices, Faust's read-offset rules.

The consumer is a real one built by the app (no broker is contacted); the
fetch itself is what the integration tests drive through a real broker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from faust.types import TP

from streams.batches import SLICE_RECORDS, BatchingConsumer
from streams.ingest import InboundMessage

pytestmark = pytest.mark.agents

TOPIC = "clickstream"
PARTITION = TP(TOPIC, 0)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int | None = None
    key: bytes | None = b"cus-1"
    value: bytes | None = b"{}"


def records(offsets: range) -> list[Record]:
    return [Record(TOPIC, 0, offset) for offset in offsets]


def consumer(committed: int) -> Any:
    from streams.app import build
    from streams.settings import Settings

    built: Any = build(Settings(app_id="nudge-unit-batches", topic_partitions=4)).app.consumer
    assert isinstance(built, BatchingConsumer)
    built.app.topics.acking_topics.add(TOPIC)  # as the conductor does once it subscribes
    built._committed_offset[PARTITION] = committed
    built._read_offset[PARTITION] = committed
    return built


class Handler:
    """Records each slice; ``after`` runs once a slice is handled (to stage a rebalance)."""

    def __init__(self, after: Callable[[], None] = lambda: None) -> None:
        self.slices: list[list[int]] = []
        self.after = after

    async def __call__(self, piece: Sequence[InboundMessage]) -> None:
        self.slices.append([record.offset for record in piece])
        self.after()


async def test_records_go_in_order_in_slices_and_every_finished_slice_is_acked() -> None:
    built = consumer(committed=100)
    handler = Handler()
    fetched = records(range(100, 100 + 2 * SLICE_RECORDS + 7))
    await built._deliver_in_slices(PARTITION, fetched, handler, lambda: True)
    assert [len(s) for s in handler.slices] == [SLICE_RECORDS, SLICE_RECORDS, 7]
    assert [o for s in handler.slices for o in s] == [r.offset for r in fetched]
    assert built._read_offset[PARTITION] == fetched[-1].offset
    assert built._new_offset(PARTITION) == fetched[-1].offset + 1


async def test_a_rebalance_during_a_slice_leaves_it_and_the_rest_unacked() -> None:
    built = consumer(committed=100)
    state = {"current": True}

    def rebalance_after_the_second() -> None:
        if len(handler.slices) == 2:
            state["current"] = False

    handler = Handler(rebalance_after_the_second)
    fetched = records(range(100, 100 + 3 * SLICE_RECORDS))
    await built._deliver_in_slices(PARTITION, fetched, handler, lambda: state["current"])
    assert len(handler.slices) == 2
    first_slice_end = 100 + SLICE_RECORDS - 1
    assert built._read_offset[PARTITION] == first_slice_end
    assert built._new_offset(PARTITION) == first_slice_end + 1


async def test_records_before_the_read_offset_are_dropped_and_skipped_offsets_are_a_gap() -> None:
    built = consumer(committed=41)  # sought to 41: the next offset to read
    fetched = [Record(TOPIC, 0, o) for o in (39, 40, 41, 45, 46)]
    unread = await built._unread(PARTITION, fetched)
    assert [r.offset for r in unread] == [41, 45, 46]
    await built._deliver_in_slices(PARTITION, unread, Handler(), lambda: True)
    assert built._new_offset(PARTITION) == 47  # 42-44 never came: a gap, not a hole


async def test_offsets_a_commit_already_moved_past_are_not_acked_again() -> None:
    built = consumer(committed=100)
    built._ack_offsets(PARTITION, [98, 99, 100, 101])
    assert sorted(built._acked[PARTITION]) == [100, 101]
    built._ack_offsets(PARTITION, [101, 102])
    assert sorted(built._acked[PARTITION]) == [100, 101, 102]


async def test_records_of_a_partition_not_yet_active_are_fetched_again_not_dropped() -> None:
    """Faust would skip them; with no committed offset to seek back to, they were lost."""
    built = consumer(committed=0)
    sought: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))

    built.assignment = lambda: {PARTITION}
    built.seek = seek
    handler = Handler()
    built.batch_handlers = {TOPIC: handler}
    await built._deliver({PARTITION: records(range(7, 12))}, active=set())
    assert handler.slices == []
    assert sought == [(PARTITION, 7)]
    assert not built._acked[PARTITION]


async def test_records_of_a_partition_no_longer_assigned_are_left_alone() -> None:
    built = consumer(committed=0)
    sought: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))

    built.assignment = lambda: set()
    built.seek = seek
    built.batch_handlers = {TOPIC: Handler()}
    await built._deliver({PARTITION: records(range(7, 12))}, active=set())
    assert sought == []
