"""The ingestion adapter: one inbound message in, profile, outputs and dead letters out.

Everything an agent does with a message lives here so the agent itself is a
loop of three lines. The handler never raises: a message that fails to
decode, is keyed by someone else, or breaks the core goes to the dead-letter
topic with the reason and its raw bytes, and the next message is handled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from schemas import (
    DeadLetter,
    DecodeError,
    DecodeLimits,
    InboundEvent,
    SourceMessage,
    TopicKind,
    dead_letter_for_key_mismatch,
    dead_letter_from_error,
    dead_letter_from_exception,
    decode,
    key_matches,
)
from streams.core import reducer
from streams.core.profile import Profile, Tombstone
from streams.metrics import Metrics

log = logging.getLogger(__name__)


class InboundMessage(Protocol):
    """The parts of a consumed Kafka message the adapter reads (Faust's ``Message``)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None


class Sink(Protocol):
    """A topic the adapter writes to (the dead-letter topic, ``profiles.outbound``)."""

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        """Hand the message to the producer; it is flushed before the offset commits."""


def utc_now() -> datetime:
    """Read the worker's wall clock; the core never does, the shell passes it in."""
    return datetime.now(UTC)


@dataclass
class Ingestor:
    """Applies the messages of one inbound topic kind to the profile table."""

    kind: TopicKind
    limits: DecodeLimits
    config: reducer.ProfileConfig
    profiles: MutableMapping[str, Profile | Tombstone]
    dead_letter: Sink
    profile_changes: Sink
    metrics: Metrics
    clock: Callable[[], datetime] = utc_now

    async def handle(self, message: InboundMessage) -> None:
        """Decode, validate and apply one message; dead-letter it on any failure."""
        with self.metrics.event_processing.labels(self.kind.value).time():
            now = self.clock()
            outcome = decode(self.kind, message.value, now=now, limits=self.limits)
            if isinstance(outcome, DecodeError):
                await self._reject(
                    message, dead_letter_from_error(outcome, _source(message), now=now)
                )
                return
            if not key_matches(outcome, message.key):
                record = dead_letter_for_key_mismatch(outcome, _source(message), now=now)
                await self._reject(message, record)
                return
            try:
                step = reducer.apply(self.profiles.get(outcome.customer_id), outcome, self.config)
            except Exception as exc:
                log.exception("processing failed at %s[%d]@%d", *_where(message))
                record = dead_letter_from_exception(
                    exc, _source(message), now=now, event_type=outcome.type
                )
                await self._reject(message, record)
                return
            self.metrics.events_consumed.labels(self.kind.value, outcome.type).inc()
            await self._store(outcome, step)

    async def _store(self, event: InboundEvent, step: reducer.Step) -> None:
        if not step.applied:
            self.metrics.events_skipped.labels(self.kind.value, step.reason or "unknown").inc()
            return
        # Reassign, never mutate: a table writes its changelog only on set.
        self.profiles[event.customer_id] = step.profile
        for output in step.outputs:
            await self.profile_changes(event.customer_id.encode(), output.to_bytes())

    async def _reject(self, message: InboundMessage, record: DeadLetter) -> None:
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s", *_where(message), record.reason, record.detail
        )
        await self.dead_letter(message.key, record.to_bytes())
        self.metrics.events_deadlettered.labels(self.kind.value, record.reason).inc()


def _where(message: InboundMessage) -> tuple[str, int, int]:
    return message.topic, message.partition, message.offset


def _source(message: InboundMessage) -> SourceMessage:
    """Describe ``message`` for a dead letter; Faust's epoch-seconds timestamp becomes UTC."""
    timestamp = (
        datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp is not None else None
    )
    return SourceMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=timestamp,
        key=message.key,
        value=message.value,
    )
