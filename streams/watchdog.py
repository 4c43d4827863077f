"""A stall watchdog: notice inbound partitions that stop moving, unstick them, or exit.

A restarted worker was seen to stop committing an inbound partition for
good while logging nothing (faust-streaming/faust#596, fixed here by
``streams.commits.SteadyFlowControl``): offsets stay
uncommitted, so nothing is lost, but the worker never catches up and no
error says so. Whatever the cause, this or another, the symptom is the same
and cheap to watch for: a partition with messages waiting (its log end offset is past
the committed offset) whose committed offset does not move for
``NUDGE_STALL_SECONDS``.

The watchdog then logs an ERROR naming the partitions and the consumer's
state for each, counts it (``nudge_consumer_stalls_total``), and first tries
to unstick the partitions in-process: resume them if Faust left them paused,
seek them back to their committed offset (so a message the worker fetched
but never handled is fetched again), and restart Faust's fetcher if it has
stopped. If a second period passes without progress, it exits the process
with :data:`STALL_EXIT_CODE` so the supervisor (Kubernetes, systemd, the
test harness) restarts it. Exiting abruptly is safe for the same reason a
SIGKILL is (``tests/integration/test_crash.py``): nothing counts as done
before its offset is committed, and the offsets of what was not are not.

The decision is :func:`assess`, a pure function of what was read (tested in
``tests/unit/test_watchdog.py``); :class:`StallWatchdog` only reads Faust's
consumer, applies the decision and acts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NoReturn

from prometheus_client import Counter

from streams.metrics import Metrics

log = logging.getLogger(__name__)

STALL_EXIT_CODE = 75
"""``EX_TEMPFAIL``: the worker exits so that it is restarted, not because it is misconfigured."""

PartitionKey = tuple[str, int]


class Action(Enum):
    """What the watchdog does after a check."""

    none = "none"
    unstick = "unstick"
    exit = "exit"


@dataclass(frozen=True)
class PartitionReading:
    """What the worker knows about one assigned inbound partition at one moment.

    Offsets are Kafka's: ``end`` is the offset the next message written will
    get, ``committed`` the next offset the group will read after a restart,
    ``position`` the next offset this consumer will fetch. ``None`` is
    unknown. ``state`` describes the consumer's view (paused, inactive...)
    for the log line only.
    """

    topic: str
    partition: int
    end: int | None
    committed: int | None
    position: int | None
    state: str = ""

    @property
    def key(self) -> PartitionKey:
        """The partition's identity across readings."""
        return (self.topic, self.partition)

    @property
    def done(self) -> int | None:
        """The offset everything before which is done: committed, else the fetch position.

        Before the worker's first commit on a partition only the position
        tells how far it got.
        """
        return self.committed if self.committed is not None else self.position

    @property
    def lag(self) -> int:
        """Messages waiting to be done (0 when the end or the progress is unknown)."""
        if self.end is None or self.done is None:
            return 0
        return max(self.end - self.done, 0)

    def describe(self) -> str:
        """One partition for the log line: offsets and state."""
        text = (
            f"{self.topic}[{self.partition}] end={self.end} committed={self.committed} "
            f"position={self.position} lag={self.lag}"
        )
        return f"{text} ({self.state})" if self.state else text


@dataclass(frozen=True)
class Track:
    """Where a partition's progress stood, and since when it has stood there."""

    done: int | None
    since: float


@dataclass(frozen=True)
class WatchState:
    """Everything the watchdog remembers between checks.

    ``unstuck_at`` is when it last tried to unstick partitions in the stall
    under way (``None`` when there is none): a second period without
    progress after it means exiting.
    """

    tracks: Mapping[PartitionKey, Track] = field(default_factory=dict)
    unstuck_at: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: the new state, what to do, and the partitions concerned."""

    state: WatchState
    action: Action
    stalled: tuple[PartitionReading, ...] = ()


def assess(
    state: WatchState,
    readings: Iterable[PartitionReading],
    *,
    now: float,
    stall_seconds: float,
    busy: bool,
) -> Verdict:
    """Decide from the latest readings whether partitions are stalled and what to do.

    A partition makes progress when its ``done`` offset moves, and has
    nothing to do when its lag is zero; either restarts its clock. While the
    worker is ``busy`` (rebalancing, restoring tables) every clock restarts:
    partitions are paused then on purpose and the time that takes is
    Faust's, bounded by the broker's rebalance timeout. A partition with lag
    whose clock has run ``stall_seconds`` is stalled. The first time in a
    stall the action is to unstick; if partitions are still stalled
    ``stall_seconds`` after that, to exit. Partitions no longer assigned are
    forgotten.

    >>> r = PartitionReading("clicks", 0, end=10, committed=4, position=10)
    >>> v = assess(WatchState(), [r], now=0.0, stall_seconds=60, busy=False)
    >>> v.action, v.stalled
    (<Action.none: 'none'>, ())
    >>> v = assess(v.state, [r], now=60.0, stall_seconds=60, busy=False)
    >>> v.action, [s.key for s in v.stalled]
    (<Action.unstick: 'unstick'>, [('clicks', 0)])
    >>> assess(v.state, [r], now=120.0, stall_seconds=60, busy=False).action
    <Action.exit: 'exit'>
    """
    tracks: dict[PartitionKey, Track] = {}
    stalled: list[PartitionReading] = []
    for reading in readings:
        previous = state.tracks.get(reading.key)
        if busy or reading.lag == 0 or previous is None or previous.done != reading.done:
            tracks[reading.key] = Track(reading.done, now)
            continue
        tracks[reading.key] = previous
        if now - previous.since >= stall_seconds:
            stalled.append(reading)
    if not stalled:
        return Verdict(WatchState(tracks, None), Action.none)
    if state.unstuck_at is None:
        return Verdict(WatchState(tracks, now), Action.unstick, tuple(stalled))
    if now - state.unstuck_at >= stall_seconds:
        return Verdict(WatchState(tracks, state.unstuck_at), Action.exit, tuple(stalled))
    return Verdict(WatchState(tracks, state.unstuck_at), Action.none, tuple(stalled))


def check_interval(stall_seconds: float) -> float:
    """How often to check: often enough to act within a quarter period of the deadline."""
    return max(min(stall_seconds / 4, 15.0), 0.5)


def _exit_now(code: int) -> NoReturn:
    """Leave at once, as a SIGKILL would: a graceful stop waits for the stalled messages."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass
class StallWatchdog:
    """Reads a Faust worker's inbound partitions, applies :func:`assess`, and acts on it.

    ``topics`` are the inbound topic names the worker consumes (changelogs
    and internal topics are not watched: Faust pauses them on purpose).
    ``stalls`` is ``nudge_consumer_stalls_total`` (labelled by action).
    """

    app: Any
    topics: frozenset[str]
    stall_seconds: float
    stalls: Counter
    clock: Callable[[], float]
    exit: Callable[[int], NoReturn] = _exit_now
    state: WatchState = field(default_factory=WatchState)
    _ends: asyncio.Future[Mapping[Any, int]] | None = field(default=None, repr=False)

    async def check(self) -> Action:
        """Read, decide, act; return the action taken (for tests and logs)."""
        consumer = self.app.__dict__.get("_consumer")
        if consumer is None:
            return Action.none
        busy = bool(self.app.rebalancing or self.app.in_recovery)
        try:
            readings = [] if busy else await self._read(consumer)
        except Exception:
            # A rebalance or a broker outage under way: nobody can commit now,
            # so the clocks start again once the broker answers.
            log.debug("stall watchdog: could not read the consumer", exc_info=True)
            self.state = WatchState()
            return Action.none
        verdict = assess(
            self.state, readings, now=self.clock(), stall_seconds=self.stall_seconds, busy=busy
        )
        self.state = verdict.state
        if verdict.action is Action.unstick:
            self.stalls.labels("unstick").inc()
            log.error(
                "stall: no progress for %.0fs on %s; trying to unstick them "
                "(resume, seek to committed, restart the fetcher)",
                self.stall_seconds,
                "; ".join(r.describe() for r in verdict.stalled),
            )
            try:
                await self._unstick(consumer, verdict.stalled)
            except Exception:  # a failed attempt leaves the exit a period later
                log.exception("stall: could not unstick the partitions")
        elif verdict.action is Action.exit:
            self.stalls.labels("exit").inc()
            log.error(
                "stall: still no progress %.0fs after trying to unstick %s; exiting with "
                "code %d so the worker is restarted (uncommitted messages are read again)",
                self.stall_seconds,
                "; ".join(r.describe() for r in verdict.stalled),
                STALL_EXIT_CODE,
            )
            self.exit(STALL_EXIT_CODE)
        return verdict.action

    async def _read(self, consumer: Any) -> list[PartitionReading]:
        tps = sorted(tp for tp in consumer.assignment() if tp.topic in self.topics)
        if not tps:
            return []
        # Asked of the broker, not taken from the last fetch: a partition
        # that is never fetched again would keep a stale high-water mark.
        # One request at a time, and waited for a bounded time: during a
        # broker outage it holds one of the consumer thread's two workers
        # until aiokafka gives up, and checks meanwhile read nothing.
        if self._ends is None or self._ends.done():
            self._ends = asyncio.ensure_future(consumer.highwaters(*tps))
            # Retrieve a failure even if no check awaits it any more, so
            # asyncio does not log it as never retrieved.
            self._ends.add_done_callback(lambda done: done.cancelled() or done.exception())
        ends = await asyncio.wait_for(
            asyncio.shield(self._ends), timeout=min(self.stall_seconds, 30.0)
        )
        return [
            PartitionReading(
                topic=tp.topic,
                partition=tp.partition,
                end=ends.get(tp),
                committed=consumer._committed_offset.get(tp),
                position=fetch_position(consumer, tp),
                state=describe_consumer(self.app, consumer, tp),
            )
            for tp in tps
        ]

    async def _unstick(self, consumer: Any, stalled: Iterable[PartitionReading]) -> None:
        """Undo each way a partition was seen to stop: paused, sought past, fetcher gone."""
        by_key = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        pairs = [(by_key[r.key], r) for r in stalled if r.key in by_key]
        if not pairs or self.app.rebalancing:
            return
        consumer.resume_partitions([tp for tp, _ in pairs])
        for tp, reading in pairs:
            if reading.committed is not None:
                # Fetched from the committed offset again, and delivered again:
                # Faust drops what is behind its read offset, which seek resets.
                # What was handled already is handled again, as after a crash.
                await consumer.seek(tp, reading.committed)
        if not consumer.flow_active:
            consumer.resume_flow()
        fetcher = self.app._fetcher
        if fetcher.should_stop or not fetcher.started:
            log.error("stall: Faust's fetcher was not running; restarting it")
            fetcher.service_reset()
            await fetcher.maybe_start()


def fetch_position(consumer: Any, tp: Any) -> int | None:
    """Read the next offset aiokafka will fetch for ``tp``, without waiting (None if unknown).

    ``AIOKafkaConsumer.position`` waits until a position is known, which a
    stuck partition may never have; its subscription state answers at once.
    """
    try:
        state = consumer._thread._consumer._subscription.subscription.assignment.state_value(tp)
    except Exception:  # not assigned any more, or not started
        return None
    return int(state.position) if state.has_valid_position else None


def describe_consumer(app: Any, consumer: Any, tp: Any) -> str:
    """Say what Faust and aiokafka think of ``tp``, for the stall log line."""
    words = []
    if tp in consumer._paused_partitions:
        words.append("paused by Faust")
    active = consumer._active_partitions
    if active is not None and tp not in active:
        words.append("not active")
    if not consumer.flow_active:
        words.append("consumer flow stopped")
    if not app.flow_control.is_active():
        words.append("stream flow suspended")
    committed = consumer._committed_offset.get(tp)
    acked = consumer._acked.get(tp) or []
    if acked and committed is not None and min(acked) > committed:
        words.append(
            f"{len(acked)} acked from offset {min(acked)}, none at the committed offset {committed}"
        )
    unacked = sum(1 for m in list(consumer._unacked_messages) if m.tp == tp)
    if unacked:
        words.append(f"{unacked} in the agents")
    fetcher = app._fetcher
    if fetcher.should_stop or not fetcher.started:
        words.append("fetcher not running")
    return ", ".join(words) or "consuming"


def watch_for_stalls(
    app: Any, topics: Iterable[str], stall_seconds: float, metrics: Metrics
) -> StallWatchdog:
    """Check the worker's ``topics`` for stalls on a Faust timer, every :func:`check_interval`."""
    watchdog = StallWatchdog(
        app=app,
        topics=frozenset(topics),
        stall_seconds=stall_seconds,
        stalls=metrics.consumer_stalls,
        clock=time.monotonic,
    )

    async def stall_watchdog() -> None:
        await watchdog.check()

    app.timer(interval=check_interval(stall_seconds))(stall_watchdog)
    return watchdog
