"""Inbound events in batches: from the fetch straight to the ingestors.

Faust hands every fetched message to its agents one at a time: a message
object, then in the fetch loop two tasks and an ``asyncio.wait``
(``wait_first(callback(message), suspend_flow.wait())``), a queue put and
get, a stream iteration and an ack. Profiled on a worker, that path and the
event loop under it took about half the CPU, more than decoding, the
profile update, scoring and the rules together.

:class:`BatchingConsumer` keeps everything else of Faust's consumer: the
fetch with its flow control (suspended in a rebalance, partitions paused
during table recovery), the read offsets and gaps, the acked offsets a
commit moves past, and the commits themselves. What changes is delivery:
the records of one fetched partition of an inbound topic go to that topic's
:class:`BatchHandler` in slices, and a slice's offsets are acked together
once the handler is done with it. Topics without a batch handler
(changelogs read during recovery, model snapshots, training examples, clock
ticks) go to their agents exactly as before.

Offsets are committed by Faust's commit timer (``broker_commit_interval``)
only. Faust's loop also commits inline every ``broker_commit_every`` acks,
and a commit writes the staged customer state: inline, ingestion would wait
for it, and for any commit the timer had already begun.

A slice is the unit of everything a rebalance can interrupt: between two
slices the loop checks that the flow is still active and the consumer
generation unchanged, and stops delivering the fetch otherwise. Records of
a slice that was not acked are fetched again once the partition is sought to
its committed offset, by this worker or the next owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ack_lock

from streams.commits import CommittingConsumer
from streams.ingest import InboundMessage

SLICE_RECORDS = 200
"""Records handed to a batch handler at once.

Big enough that per-slice costs (a lock, the producer hand-over, an ack)
vanish per event; small enough that one slice holds the event loop for tens
of milliseconds at most, so a trigger waiting in the producer, a commit and
the web server are not held up behind a large fetch.
"""


BatchHandler = Callable[[Sequence[InboundMessage]], Awaitable[None]]
"""Applies consecutive records of one partition in order and never raises for a bad one;
their offsets count as done once it returns."""


class BatchingConsumer(CommittingConsumer):
    """Faust's consumer, delivering the records of inbound topics in batches (see module doc)."""

    batch_handlers: Mapping[str, BatchHandler] = {}
    """Batch handler by topic name; set by the app before the consumer starts."""

    async def _drain_messages(self, fetcher: Any) -> None:
        """Fetch and deliver until the consumer or its fetcher stops.

        Faust's loop (``Consumer._drain_messages`` and ``getmany``) with
        batch delivery added: records of topics with a batch handler are
        sliced and handed over; any other record goes through the per-message
        callback (Faust's conductor) as Faust would deliver it.
        """
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(timeout=1.0)
                # A fetch that returns at once must still let the loop run.
                await self.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # Fetched as a rebalance stopped the flow: read them again later.
                    await self.perform_seek()
                    continue
                await self._deliver(records, active)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise

    async def _deliver(self, records: Mapping[TP, Sequence[Any]], active: set[TP] | None) -> None:
        generation = self.app.consumer_generation_id

        def current() -> bool:
            return self.flow_active and self.app.consumer_generation_id == generation

        for tp, fetched in records.items():
            if not current():
                return
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                await self._fetch_again(tp, fetched)
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            unread = await self._unread(tp, fetched)
            handler = self.batch_handlers.get(tp.topic)
            if handler is None:
                await self._deliver_one_by_one(tp, unread, current)
            else:
                await self._deliver_in_slices(tp, unread, handler, current)

    async def _fetch_again(self, tp: TP, fetched: Sequence[Any]) -> None:
        """Seek back to records fetched for a partition that is not active, so none is lost.

        Faust drops them (its ``getmany`` skips partitions outside its active
        set), trusting the seek to committed offsets at the end of recovery
        to fetch them again. A partition with no committed offset yet is not
        sought, so its records were gone: seen when a worker started on
        events already waiting while it read its standby partitions (model
        snapshots), which fetched its inbound partitions before Faust counted
        them active; the worker then consumed nothing, and with its fetch
        position at the end its lag read zero.
        """
        if not fetched or tp not in self.assignment():
            return  # not this worker's partition any more: nothing to keep
        first = fetched[0].offset
        self.log.info(
            "fetched %d records of %s before it was active; reading from %d again",
            len(fetched),
            tp,
            first,
        )
        await self.seek(tp, first)

    async def _unread(self, tp: TP, fetched: Sequence[Any]) -> list[Any]:
        """Drop records at or before the read offset; count skipped offsets as a gap.

        Faust's rules: a record is new if its offset is at least the read
        offset (after a seek the read offset is the next to read); offsets
        skipped between the read offset and a new record (compacted away,
        transaction markers) are a gap the commit may move past.
        """
        unread: list[Any] = []
        last = self._read_offset[tp]
        acks = self.app.topics.acks_enabled_for(tp.topic)
        for record in fetched:
            offset = record.offset
            if last is not None and offset < last:
                continue
            if acks and last and offset - last > 1:
                await self._add_gap(tp, last + 1, offset)
            unread.append(record)
            last = offset
        return unread

    async def _deliver_one_by_one(
        self, tp: TP, records: Sequence[Any], current: Callable[[], bool]
    ) -> None:
        """Hand each record to Faust's per-message path, as its own fetch loop does."""
        for record in records:
            if not current():
                return
            await self.wait_first(
                self.callback(self._to_message(tp, record)), self.suspend_flow.wait()
            )
            self._read_offset[tp] = record.offset

    async def _deliver_in_slices(
        self, tp: TP, records: Sequence[Any], handler: BatchHandler, current: Callable[[], bool]
    ) -> None:
        """Hand records to ``handler`` a slice at a time; ack each slice it finished."""
        for start in range(0, len(records), SLICE_RECORDS):
            if not current():
                return
            piece = records[start : start + SLICE_RECORDS]
            await handler(piece)
            if not current():
                # A rebalance ran while the slice's outputs were handed over:
                # its offsets are no longer this consumer's to ack.
                return
            self._ack_offsets(tp, [record.offset for record in piece])
            self._read_offset[tp] = piece[-1].offset

    def _ack_offsets(self, tp: TP, offsets: Sequence[int]) -> None:
        """Count ``offsets`` as done, as Faust's ``ack`` does for each message it delivered."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            new = [o for o in offsets if (committed is None or o >= committed) and o not in index]
            index.update(new)
            self._acked[tp].extend(new)
            self._n_acked += len(new)


class BatchingTransport(aiokafka_driver.Transport):
    """The aiokafka transport with :class:`BatchingConsumer` as its consumer."""

    Consumer = BatchingConsumer
