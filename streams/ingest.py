"""The ingestion adapter: one inbound message in; state, outputs and dead letters out.

Everything the worker does with an inbound record lives here; the consumer
hands records over in batches (:mod:`streams.batches`). For each record:
decode it, move its partition's event clock, fire what that clock made due
on the partition, apply the event through the engine, stage what changed
and queue what the engine returned; once the batch is applied, the queued
messages go to the producer. The handler never raises for a bad record: one
that fails to decode, is keyed by someone else, or breaks the core goes to
the dead-letter topic with the reason and its raw bytes, and the next record
is handled.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from online_models.labels import Pending
from schemas import (
    DeadLetter,
    DecodeError,
    DecodeLimits,
    SourceMessage,
    TopicKind,
    dead_letter_for_key_mismatch,
    dead_letter_from_error,
    dead_letter_from_exception,
    decode,
    key_matches,
)
from streams.core import engine
from streams.core.clock import Watermark
from streams.core.engine import Deadlines, Destination, EngineConfig, Models, Result
from streams.core.profile import Profile, Tombstone
from streams.due import DueIndex
from streams.metrics import Metrics

log = logging.getLogger(__name__)


class InboundMessage(Protocol):
    """The parts of a fetched Kafka record the adapter reads (aiokafka's ``ConsumerRecord``).

    ``timestamp`` is Kafka's: epoch milliseconds.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None


class Sink(Protocol):
    """A topic the adapter writes to."""

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        """Hand the message to the producer; it is flushed before the offset commits."""


def utc_now() -> datetime:
    """Read the worker's wall clock; the core never does, the shell passes it in."""
    return datetime.now(UTC)


class Part(enum.Enum):
    """The three per-customer tables, in the order a commit writes them."""

    deadlines = "deadlines"
    pending = "pending"
    profile = "profile"


@dataclass(frozen=True, slots=True)
class Staged:
    """A customer's newest state, not yet written to the tables, and which parts changed."""

    partition: int
    state: Result
    changed: frozenset[Part]


@dataclass
class CustomerStore:
    """The three per-customer tables the engine reads and writes, written behind.

    A step's state is staged here and written to the tables only when the
    worker commits, after the messages the step produced are delivered (see
    :mod:`streams.commits`). A crash therefore never leaves state that
    remembers an event whose outputs were lost: either the state was written
    (and its outputs were out before it) or the event is delivered again and
    recomputed against the older state, producing the same ids. Staging also
    coalesces a busy customer's writes to one changelog record per commit.
    Reads see the newest state: staged, then being written, then stored.

    ``handover`` is held from a step's staging until its messages are with
    the producer, and by a commit while it takes the staged batch: a commit
    never writes the state of a step whose messages it could not flush.
    """

    profiles: MutableMapping[str, Profile | Tombstone]
    deadlines: MutableMapping[str, Deadlines]
    pending: MutableMapping[str, Pending]
    staged: dict[str, Staged] = field(default_factory=dict)
    writing: dict[str, Staged] = field(default_factory=dict)
    handover: asyncio.Lock = field(default_factory=asyncio.Lock)

    def save(self, partition: int, customer_id: str, before: Result, after: Result) -> None:
        """Stage what changed (a table writes its changelog only on assignment)."""
        changed = set()
        if after.profile is not None and after.profile is not before.profile:
            changed.add(Part.profile)
        if after.deadlines != before.deadlines:
            changed.add(Part.deadlines)
        if after.pending is not None and after.pending != before.pending:
            changed.add(Part.pending)
        if not changed:
            return
        earlier = self.staged.get(customer_id)
        if earlier is not None:
            changed |= earlier.changed
        state = Result(after.profile, after.deadlines, after.pending)
        self.staged[customer_id] = Staged(partition, state, frozenset(changed))

    def load(self, customer_id: str) -> Result:
        """Read the customer's newest state as the engine takes it."""
        newest = self.staged.get(customer_id) or self.writing.get(customer_id)
        if newest is not None:
            return newest.state
        return Result(
            self.profiles.get(customer_id),
            self.deadlines.get(customer_id) or Deadlines(customer_id=customer_id),
            self.pending.get(customer_id),
        )

    def profile(self, customer_id: str) -> Profile | Tombstone | None:
        """Read the customer's newest profile (the profile API's view)."""
        return self.load(customer_id).profile

    def take(self) -> dict[str, Staged]:
        """Move everything staged to the batch being written, and return that batch.

        Steps taken from now on are staged afresh and wait for the next
        commit; a batch a failed commit left behind is written with this one.
        """
        self.writing.update(self.staged)
        self.staged = {}
        return self.writing

    def write(self, batch: Mapping[str, Staged], part: Part, table_write: TableWrite) -> None:
        """Write one part of every customer in ``batch`` to its table."""
        tables: dict[Part, MutableMapping[str, Any]] = {
            Part.profile: self.profiles,
            Part.deadlines: self.deadlines,
            Part.pending: self.pending,
        }
        table = tables[part]
        for customer_id, staged in batch.items():
            if part in staged.changed:
                table_write(staged.partition, table, customer_id, _part_of(staged.state, part))

    def write_deadlines_kept(self, batch: Mapping[str, Staged], table_write: TableWrite) -> None:
        """Write the batch's deadlines with those it removed still in (``Deadlines.keeping``)."""
        for customer_id, staged in batch.items():
            if Part.deadlines in staged.changed:
                stored = self.deadlines.get(customer_id)
                kept = staged.state.deadlines.keeping(stored)
                table_write(staged.partition, self.deadlines, customer_id, kept)

    def write_deadline_removals(self, batch: Mapping[str, Staged], table_write: TableWrite) -> None:
        """Write the batch's final deadlines where the first write kept removed ones."""
        for customer_id, staged in batch.items():
            final = staged.state.deadlines
            if Part.deadlines in staged.changed and self.deadlines.get(customer_id) != final:
                table_write(staged.partition, self.deadlines, customer_id, final)

    def written(self) -> None:
        """Forget the batch once the tables hold it."""
        self.writing = {}

    def forget(self, partitions: Collection[int]) -> None:
        """Drop staged state of partitions this worker no longer owns.

        Their offsets past the last commit were not committed either, so the
        new owner applies those events again from the state written before.
        """
        for batch in (self.staged, self.writing):
            for customer_id in [c for c, s in batch.items() if s.partition in partitions]:
                del batch[customer_id]


class TableWrite(Protocol):
    """Writes one value to a table on a given partition (outside any stream event)."""

    def __call__(
        self, partition: int, table: MutableMapping[str, Any], key: str, value: Any
    ) -> None:
        """Assign ``table[key] = value``, its changelog record going to ``partition``."""


def _part_of(state: Result, part: Part) -> Any:
    if part is Part.profile:
        return state.profile
    if part is Part.deadlines:
        return state.deadlines
    return state.pending


@dataclass
class Partitions:
    """What the worker knows per partition: its event clock and what is due on it."""

    lateness: timedelta
    due: DueIndex = field(default_factory=DueIndex)
    clocks: dict[int, Watermark] = field(default_factory=dict)

    def clock(self, partition: int) -> Watermark:
        """Return the partition's watermark (a fresh one if nothing was seen yet)."""
        return self.clocks.get(partition) or Watermark(self.lateness)

    def forget_clock(self, partition: int) -> None:
        """Drop the clock of a partition this worker no longer owns (it restarts from events)."""
        self.clocks.pop(partition, None)

    def remember(self, partition: int, customer_id: str, result: Result) -> None:
        """Index the customer's next deadline and next label horizon."""
        self.due.add(partition, result.deadlines.next_due(), customer_id)
        if result.pending is not None:
            self.due.add(partition, result.pending.next_horizon_end, customer_id)


@dataclass
class Ingestor:
    """Applies the messages of one inbound topic through the engine.

    ``kind`` is the topic's kind, or None for the replay topic, which carries
    events of every kind in the order a backfill published them. ``outbox``
    holds what the records being handled produced until ``handle`` hands it
    to the sinks, after the last of them.
    """

    kind: TopicKind | None
    limits: DecodeLimits
    config: EngineConfig
    store: CustomerStore
    partitions: Partitions
    models: Callable[[], Models]
    sinks: Mapping[Destination, Sink]
    dead_letter: Sink
    metrics: Metrics
    clock: Callable[[], datetime] = utc_now
    outbox: list[tuple[Sink, bytes | None, bytes]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The ``topic`` label of this ingestor's metrics."""
        return "replay" if self.kind is None else self.kind.value

    async def handle(self, messages: Sequence[InboundMessage]) -> None:
        """Apply records in order, then hand what they produced to the producer.

        The store's hand-over lock is held throughout (see :class:`CustomerStore`).
        """
        async with self.store.handover:
            for message in messages:
                self._apply(message)
            await self._send_outbox()

    async def tick(self, partition: int, wall: datetime) -> None:
        """Move a partition's clock by wall time and fire what that made due."""
        async with self.store.handover:
            mark = self.partitions.clock(partition).tick(wall)
            self.partitions.clocks[partition] = mark
            now = mark.now()
            if now is not None:
                self.fire_due(partition, now)
            await self._send_outbox()

    def _apply(self, message: InboundMessage) -> None:
        """Decode, validate and apply one record; dead-letter it on any failure."""
        with self.metrics.child(self.metrics.event_processing, self.label).time():
            wall = self.clock()
            outcome = decode(self.kind, message.value, now=wall, limits=self.limits)
            if isinstance(outcome, DecodeError):
                self._reject(message, dead_letter_from_error(outcome, _source(message), now=wall))
                return
            if not key_matches(outcome, message.key):
                record = dead_letter_for_key_mismatch(outcome, _source(message), now=wall)
                self._reject(message, record)
                return
            try:
                now = self._advance_clock(message.partition, outcome.occurred_at, wall)
            except Exception as exc:
                self._fail(message, exc, wall, outcome.type)
                return
            self.fire_due(message.partition, now)
            customer = outcome.customer_id
            try:
                before = self.store.load(customer)
                after = engine.on_event(
                    before.profile,
                    before.deadlines,
                    before.pending,
                    outcome,
                    now,
                    self.models(),
                    self.config,
                )
            except Exception as exc:
                self._fail(message, exc, wall, outcome.type)
                return
            self.metrics.child(self.metrics.events_consumed, self.label, outcome.type).inc()
            if not after.applied:
                reason = after.skipped or "unknown"
                self.metrics.child(self.metrics.events_skipped, self.label, reason).inc()
                return
            self._commit(message.partition, customer, before, after)

    def fire_due(self, partition: int, now: datetime) -> None:
        """Fire every deadline and label horizon on ``partition`` that ``now`` has reached.

        Called while handling a record of that partition (an event or a
        clock tick). A customer whose due work fails in the core is logged
        and left for their next event: one bad state must not stop a partition.
        """
        for customer in self.partitions.due.pop_due(partition, now):
            state = self.store.load(customer)
            try:
                steps = due_steps(state, now, self.config)
            except Exception:
                log.exception(
                    "due work failed for customer %r on partition %d", customer, partition
                )
                continue
            for before, after in steps:
                self._commit(partition, customer, before, after)
                state = after
            self.partitions.remember(partition, customer, state)

    def _commit(self, partition: int, customer: str, before: Result, after: Result) -> None:
        """Stage a step's state, index what it made due, and queue its messages."""
        self.store.save(partition, customer, before, after)
        self.partitions.remember(partition, customer, after)
        key = customer.encode()
        for trigger_type, outcome in after.decisions:
            self.metrics.child(self.metrics.trigger_decisions, trigger_type, outcome).inc()
        for conversion in after.conversions:
            labels = (conversion.trigger_type, conversion.arm.value)
            self.metrics.child(self.metrics.attribution_conversions, *labels).inc()
        for message in after.messages:
            self.outbox.append((self.sinks[message.destination], key, message.value))
            if message.destination is Destination.triggers:
                self._observe_latency(message.value)

    async def _send_outbox(self) -> None:
        """Hand every queued message to its sink, in the order the steps produced them."""
        queued, self.outbox = self.outbox, []
        for sink, key, value in queued:
            await sink(key, value)

    def _advance_clock(self, partition: int, occurred_at: datetime, wall: datetime) -> datetime:
        """Move the partition's watermark past an event; return the time deadlines are due by."""
        mark = self.partitions.clock(partition)
        if mark.is_late(occurred_at):
            self.metrics.child(self.metrics.late_events, self.label).inc()
        mark = mark.observe(occurred_at)
        self.partitions.clocks[partition] = mark
        now = mark.now() or occurred_at
        self.metrics.child(self.metrics.watermark_delay, str(partition)).set(
            (wall - now).total_seconds()
        )
        return now

    def _fail(
        self, message: InboundMessage, exc: Exception, wall: datetime, event_type: str
    ) -> None:
        """Dead-letter a valid message that could not be applied, with the exception."""
        log.exception("processing failed at %s[%d]@%d", *_where(message))
        record = dead_letter_from_exception(exc, _source(message), now=wall, event_type=event_type)
        self._reject(message, record)

    def _observe_latency(self, trigger: bytes) -> None:
        fields = orjson.loads(trigger)
        occurred = datetime.fromisoformat(fields["occurred_at"])
        seconds = (self.clock() - occurred).total_seconds()
        self.metrics.child(self.metrics.event_to_trigger, fields["trigger_type"]).observe(
            max(seconds, 0.0)
        )

    def _reject(self, message: InboundMessage, record: DeadLetter) -> None:
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s", *_where(message), record.reason, record.detail
        )
        self.outbox.append((self.dead_letter, message.key, record.to_bytes()))
        self.metrics.child(self.metrics.events_deadlettered, self.label, record.reason).inc()


def due_steps(state: Result, now: datetime, config: EngineConfig) -> list[tuple[Result, Result]]:
    """Take the core's steps for what is due by ``now``: deadlines in order, then labels."""
    steps: list[tuple[Result, Result]] = []
    for deadline in state.deadlines.items:
        if deadline.due_at > now:
            break
        after = engine.on_deadline(
            state.profile, state.deadlines, state.pending, deadline, now, config
        )
        steps.append((state, after))
        state = after
    pending, examples = engine.expire_labels(state.pending, now)
    if examples:
        steps.append((state, Result(state.profile, state.deadlines, pending, examples)))
    return steps


def _where(message: InboundMessage) -> tuple[str, int, int]:
    return message.topic, message.partition, message.offset


def _source(message: InboundMessage) -> SourceMessage:
    """Describe ``message`` for a dead letter; Kafka's epoch-milliseconds timestamp becomes UTC."""
    timestamp = (
        datetime.fromtimestamp(message.timestamp / 1000, UTC)
        if message.timestamp is not None
        else None
    )
    return SourceMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=timestamp,
        key=message.key,
        value=message.value,
    )
