"""Writing customer state in step with Faust's offset commits.

Faust's at-least-once commit flushes the producer and then commits the
offsets of the messages the agents have finished. Tables written as events
are handled share that producer with the outbound topics, and a crash may
leave either delivered without the other: a profile that remembers an event
(so its redelivery is skipped as a duplicate) while the trigger it produced
was never sent. Nudge therefore stages state (:class:`streams.ingest.CustomerStore`)
and writes it here, just before Faust commits, in an order that keeps every
crash on the safe side:

1. take the staged batch; steps handled from now on wait for the next commit;
2. flush the producer: every message the batch's steps produced is delivered;
3. write label buffers, and deadlines with every deadline the batch added or
   moved but none it removed (fired or cancelled), and flush them;
4. write profiles (the part that dedupes a redelivered event) and flush them;
5. write the deadlines the batch removed, and flush them; Faust then commits
   the offsets.

A crash before 4 leaves the profile without the events, which are then
delivered again and recomputed: outputs repeat with the same ids (the ESP and
the trainer drop repeats); deadlines and label buffers already written take
the same step again without effect, and a deadline that fired is still there
to fire again. A crash after 4 redelivers events the profile already holds:
skipped, their outputs already delivered in 2; a deadline kept in 3 fires
again, finds its decision in the profile (or its cart closed) and offers
nothing. Writing removals in 3 instead lost triggers: a crash between 3 and 4
left a fired deadline gone and its decision unrecorded, and the restarted
worker never decided it again (seen in the crash test as a profile without a
``browse_abandonment`` decision the fault-free run had).
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from faust.streams import _current_event
from faust.tables.table import Table
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from mode.utils.queues import FlowControlEvent

from streams.ingest import CustomerStore, Part, TableWrite
from streams.profile_cache import ProfileCache


@dataclass(frozen=True)
class _Message:
    topic: str
    partition: int


class _PartitionEvent:
    """Stands in for the stream event a Faust table write expects.

    A table assignment takes the changelog partition (and, with RocksDB, the
    store's partition) from the event being processed; a write at commit
    time has none, so it runs under this one, naming the customer's
    partition of an inbound topic (which the tables are co-partitioned with).
    """

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


WRITES_PER_SLICE = 256
"""Table writes between two yields to the event loop while a commit writes its batch.

A commit writes every customer staged since the last one (thousands at full
speed); yielding now and then lets the agents and the producer's sender run
in between instead of stopping for the whole batch.
"""


@dataclass(frozen=True, slots=True)
class _Write:
    partition: int
    table: MutableMapping[str, Any]
    key: str
    value: Any


@dataclass
class StateWriter:
    """Writes the store's staged state through the tables before offsets commit.

    A Faust table is written the way its own assignment would write it, in
    bulk: the value goes into the table's local store and its changelog
    record (raw utf-8 key, the table's value codec, the customer's
    partition) straight to the producer. Faust's assignment instead queues
    each record in its producer buffer, drained one awaited send at a time,
    and makes every agent wait while that buffer holds more than 100
    records, which stopped processing for seconds after each commit. The
    records are the same, so recovery reads them back as before. Any other
    mapping (tests use dicts) is assigned to.
    """

    store: CustomerStore
    source_topic: str
    flush: Callable[[], Awaitable[None]]

    async def before_commit(self) -> None:
        """Deliver the staged steps' outputs, then write their state (see the module doc)."""
        async with self.store.handover:
            batch = self.store.take()
        if not batch:
            return
        await self.flush()

        def additions(write: TableWrite) -> None:
            self.store.write(batch, Part.pending, write)
            self.store.write_deadlines_kept(batch, write)

        await self._write_and_flush(batch, additions)
        await self._write_and_flush(batch, partial(self.store.write, batch, Part.profile))
        await self._write_and_flush(batch, partial(self.store.write_deadline_removals, batch))
        self.store.written()

    async def _write_and_flush(
        self, batch: Mapping[str, Any], writes_of: Callable[[TableWrite], None]
    ) -> None:
        """Write what ``writes_of`` hands its table writer; if anything, flush and await it."""
        written, sent = await self._write(batch, writes_of)
        if written:
            await self.flush()
            await _delivered(sent)

    async def _write(
        self, batch: Mapping[str, Any], writes_of: Callable[[TableWrite], None]
    ) -> tuple[int, list[asyncio.Future[Any]]]:
        """Write what ``writes_of`` hands its table writer; return the count and the sends."""
        writes: list[_Write] = []

        def table_write(
            partition: int, table: MutableMapping[str, Any], key: str, value: Any
        ) -> None:
            writes.append(_Write(partition, table, key, value))

        writes_of(table_write)
        sent: list[asyncio.Future[Any]] = []
        for start in range(0, len(writes), WRITES_PER_SLICE):
            if start:
                await asyncio.sleep(0)
            # A rebalance may have run while this commit awaited: a customer whose
            # partition was revoked meanwhile is gone from the batch (see
            # ``CustomerStore.forget``) and is no longer this worker's to write.
            chunk = [w for w in writes[start : start + WRITES_PER_SLICE] if w.key in batch]
            local = contextvars.copy_context().run(self._write_locally, chunk)
            for write in local:
                sent.append(await _send_changelog(write))
        return len(writes), sent

    def _write_locally(self, writes: list[_Write]) -> list[_Write]:
        """Store each value in its table (under its partition's stand-in event).

        Returns the writes whose changelog record is still to send: those to
        Faust tables, whose local store was written without their send.
        Profiles are serialized here, a slice at a time (serializing a
        commit's thousands in one go held the event loop for all of them).
        """
        events: dict[int, _PartitionEvent] = {}
        unsent: list[_Write] = []
        for write in writes:
            if isinstance(write.table, ProfileCache):  # profiles are stored as their bytes
                value = write.table.keep(write.key, write.value)
                write = _Write(write.partition, write.table.table, write.key, value)
            event = events.get(write.partition)
            if event is None:
                event = events[write.partition] = _PartitionEvent(
                    self.source_topic, write.partition
                )
            _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
            table: Any = write.table
            if isinstance(table, Table):
                table.data[write.key] = write.value
                unsent.append(write)
            else:
                table[write.key] = write.value
        return unsent


async def _send_changelog(write: _Write) -> asyncio.Future[Any]:
    """Produce a Faust table's changelog record for ``write``, as its assignment would."""
    table: Any = write.table
    value = table.app.serializers.dumps_value(None, write.value, serializer=table.value_serializer)
    future: asyncio.Future[Any] = await table.app.producer.send(
        table.changelog_topic.get_topic_name(),
        write.key.encode(),
        value,
        write.partition,
        None,
        None,
    )
    data = table.data

    def persisted(done: asyncio.Future[Any]) -> None:
        # What Faust's own changelog callback does at least once: RocksDB keeps
        # the offset, so a restart reads only the changelog past it.
        if not done.cancelled() and done.exception() is None:
            record = done.result()
            data.set_persisted_offset(TP(record.topic, record.partition), record.offset)

    future.add_done_callback(persisted)
    return future


async def _delivered(sent: list[asyncio.Future[Any]]) -> None:
    """Raise if a changelog record failed: the commit stops and the batch is kept."""
    for future in sent:
        await future


class CommittingConsumer(aiokafka_driver.Consumer):
    """Faust's consumer, writing staged customer state before every offset commit.

    It also refuses to count a message as done that no agent ever received,
    and never commits past one that is not done.
    Faust's stream drops a message that reaches it while a rebalance has
    flow control suspended, or from an older consumer generation, and acks
    it anyway; the next commit then moves past an event nobody applied (the
    broker-fault and crash tests lost events this way). Left unacked, the
    offset holds the commit back and the message is fetched again once the
    partition is assigned and sought to its committed offset.
    """

    before_commit: Callable[[], Awaitable[None]] | None = None

    def ack(self, message: Message) -> bool:
        """Ack a message an agent received (Faust tracks it first); refuse one it skipped."""
        if not message.tracked:
            return False
        return bool(super().ack(message))

    def _new_offset(self, tp: TP) -> int | None:
        """Commit only past a run of acked offsets that starts at the committed one.

        Faust's own check lets the run start one past the committed offset
        (it compares as if that offset had been processed, but it is the next
        one to read), so a first message left unacked, as above, was skipped
        by the next commit all the same.
        """
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed and not self._gap[tp]:
            return None
        result: int | None = super()._new_offset(tp)
        return result

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Count as a gap only the offsets before the message being handed to the agents.

        Faust's fetch loop calls this when offsets were skipped (compacted
        away, transaction markers) with the offset of the message it is
        about to deliver as ``offset_to``, and marks that offset too: the
        message counted as done before any agent had it. When a stream then
        dropped it (flow suspended by a rebalance, an older generation), the
        next commit moved past an event nobody applied: the broker-fault
        test's "first event after the rebalance, never applied, yet
        committed".
        """
        await super()._add_gap(tp, offset_from, offset_to - 1)

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        if self.before_commit is not None:
            await self.before_commit()
        return await super()._commit_offsets(offsets, start_new_transaction)


class SteadyFlowControl(FlowControlEvent):
    """Faust's flow control, except that resuming a flow that is not suspended drops nothing.

    ``FlowControlEvent.resume`` empties every agent's queue, so that what was
    fetched before a rebalance is not handled after it. But Faust also calls
    it when the flow is already running: once table recovery is done it
    resumes the stream partitions, awaits the seek to their committed
    offsets, and only then "resumes" the flow (``Recovery.on_recovery_completed``,
    and ``_resume_streams`` without tables). Messages fetched during that
    seek are of the current assignment and already queued for the agents;
    the clear threw them away unhandled, while Faust's read offset had moved
    past them, so they were not fetched again either. Faust's own commit
    then skipped them (lost events); :class:`CommittingConsumer` holds its
    commits back instead, and the partition never committed again: the
    stall seen after restarts (faust-streaming/faust#596), more often when
    events keep arriving while a worker starts. A rebalance
    still empties the queues (Faust clears them when it suspends the flow),
    and so does the first resume after a suspension.
    """

    def resume(self) -> None:
        """Resume production into the queues; empty them only if the flow was suspended."""
        if self.is_active():
            return
        super().resume()
