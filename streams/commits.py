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
3. write deadlines and label buffers, and flush them;
4. write profiles (the part that dedupes a redelivered event), and let Faust
   flush and commit the offsets.

A crash before 4 leaves the profile without the events, which are then
delivered again and recomputed: outputs repeat with the same ids (the ESP and
the trainer drop repeats); deadlines and label buffers already written take
the same step again without effect. A crash after 4 and before the commit
redelivers events the profile already holds: skipped, their outputs already
delivered in 2.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from faust.streams import _current_event
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from mode.utils.queues import FlowControlEvent

from streams.ingest import CustomerStore, Part


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


@dataclass
class StateWriter:
    """Writes the store's staged state through the tables before offsets commit."""

    store: CustomerStore
    source_topic: str
    flush: Callable[[], Awaitable[None]]

    async def before_commit(self) -> None:
        """Deliver the staged steps' outputs, then write their state (see the module doc)."""
        batch = self.store.take()
        if not batch:
            return
        await self.flush()
        self._write(batch, (Part.deadlines, Part.pending))
        await self.flush()
        self._write(batch, (Part.profile,))
        self.store.written()

    def _write(self, batch: Mapping[str, Any], parts: tuple[Part, ...]) -> None:
        contextvars.copy_context().run(self._write_in_context, batch, parts)

    def _write_in_context(self, batch: Mapping[str, Any], parts: tuple[Part, ...]) -> None:
        events: dict[int, _PartitionEvent] = {}

        def table_write(
            partition: int, table: MutableMapping[str, Any], key: str, value: Any
        ) -> None:
            event = events.setdefault(partition, _PartitionEvent(self.source_topic, partition))
            _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
            table[key] = value

        for part in parts:
            self.store.write(batch, part, table_write)


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


class CommittingTransport(aiokafka_driver.Transport):
    """The aiokafka transport with :class:`CommittingConsumer` as its consumer."""

    Consumer = CommittingConsumer
