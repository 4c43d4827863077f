"""The stall watchdog's decision: which partitions are stalled, and unstick, then exit.

Each case is a sequence of checks (time, busy, readings) and the actions and
stalled partitions expected after each, so a case reads as a timeline. The
last tests drive :class:`StallWatchdog` over a fake of Faust's consumer, to
show what it reads, calls, logs and counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, NoReturn

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.watchdog import (
    STALL_EXIT_CODE,
    Action,
    PartitionReading,
    StallWatchdog,
    WatchState,
    assess,
    check_interval,
)

pytestmark = pytest.mark.unit

STALL = 60.0


def reading(
    partition: int = 0,
    *,
    end: int | None = 100,
    committed: int | None = 40,
    position: int | None = 100,
    topic: str = "clicks",
) -> PartitionReading:
    return PartitionReading(topic, partition, end=end, committed=committed, position=position)


@dataclass(frozen=True)
class Check:
    at: float
    readings: tuple[PartitionReading, ...]
    action: Action
    stalled: tuple[int, ...] = ()  # partitions reported stalled
    busy: bool = False


STUCK = (reading(),)
CASES: dict[str, list[Check]] = {
    "nothing waiting is never a stall": [
        Check(0, (reading(end=40),), Action.none),
        Check(1000, (reading(end=40),), Action.none),
    ],
    "lag that moves is progress": [
        Check(0, (reading(committed=40),), Action.none),
        Check(50, (reading(committed=41),), Action.none),
        Check(100, (reading(committed=42),), Action.none),
        Check(150, (reading(committed=43),), Action.none),
    ],
    "a stuck committed offset is a stall even while fetching goes on": [
        Check(0, (reading(position=60),), Action.none),
        Check(30, (reading(position=80),), Action.none),
        Check(60, (reading(position=100),), Action.unstick, (0,)),
    ],
    "unstick first, exit one period later": [
        Check(0, STUCK, Action.none),
        Check(59, STUCK, Action.none),
        Check(60, STUCK, Action.unstick, (0,)),
        Check(90, STUCK, Action.none, (0,)),
        Check(119, STUCK, Action.none, (0,)),
        Check(120, STUCK, Action.exit, (0,)),
    ],
    "progress after unsticking ends the episode": [
        Check(0, STUCK, Action.none),
        Check(60, STUCK, Action.unstick, (0,)),
        Check(70, (reading(committed=90),), Action.none),
        Check(130, (reading(committed=90),), Action.unstick, (0,)),
    ],
    "a rebalance or recovery restarts the clock": [
        Check(0, STUCK, Action.none),
        Check(50, STUCK, Action.none, busy=True),
        Check(100, STUCK, Action.none),
        Check(110, STUCK, Action.unstick, (0,)),
    ],
    "only the stalled partitions are named": [
        Check(0, (reading(0), reading(1, committed=10)), Action.none),
        Check(60, (reading(0), reading(1, committed=20)), Action.unstick, (0,)),
    ],
    "before a first commit the position is the progress": [
        Check(0, (reading(committed=None, position=30),), Action.none),
        Check(40, (reading(committed=None, position=50),), Action.none),
        Check(100, (reading(committed=None, position=50),), Action.unstick, (0,)),
    ],
    "unknown offsets are no evidence of a stall": [
        Check(0, (reading(end=None),), Action.none),
        Check(100, (reading(end=None),), Action.none),
        Check(200, (reading(committed=None, position=None),), Action.none),
        Check(300, (reading(committed=None, position=None),), Action.none),
    ],
    "a partition revoked and assigned again starts afresh": [
        Check(0, STUCK, Action.none),
        Check(30, (), Action.none),
        Check(61, STUCK, Action.none),
        Check(121, STUCK, Action.unstick, (0,)),
    ],
}


@pytest.mark.parametrize("timeline", CASES.values(), ids=list(CASES))
def test_assess_over_a_timeline(timeline: list[Check]) -> None:
    state = WatchState()
    for check in timeline:
        verdict = assess(state, check.readings, now=check.at, stall_seconds=STALL, busy=check.busy)
        got = (verdict.action, tuple(r.partition for r in verdict.stalled))
        assert got == (check.action, check.stalled), f"at {check.at}"
        state = verdict.state


@pytest.mark.parametrize(
    ("end", "committed", "position", "lag"),
    [
        (100, 40, 100, 60),
        (100, None, 70, 30),
        (100, 120, 120, 0),  # a stale end offset: no negative lag
        (None, 40, 100, 0),
        (100, None, None, 0),
    ],
)
def test_lag_is_end_minus_progress(
    end: int | None, committed: int | None, position: int | None, lag: int
) -> None:
    assert reading(end=end, committed=committed, position=position).lag == lag


def test_a_stalled_partition_describes_its_offsets_and_state() -> None:
    text = PartitionReading("clicks", 3, 100, 40, 100, "paused by Faust").describe()
    assert text == "clicks[3] end=100 committed=40 position=100 lag=60 (paused by Faust)"


@pytest.mark.parametrize(("stall", "interval"), [(60, 15), (8, 2), (1, 0.5), (3600, 15)])
def test_checks_come_often_enough_to_act_near_the_deadline(stall: float, interval: float) -> None:
    assert check_interval(stall) == interval


class FakeTP(NamedTuple):
    topic: str
    partition: int


class FakeFetcher:
    should_stop = False
    started = True


class FakeConsumer:
    """Just what the watchdog reads and calls on Faust's consumer."""

    def __init__(self, end: int, committed: int) -> None:
        self.tp = FakeTP("clicks", 0)
        self.end = end
        self._committed_offset = {self.tp: committed}
        self._paused_partitions = {self.tp}
        self._active_partitions: set[FakeTP] = set()
        self._acked = {self.tp: [committed + 1, committed + 2]}
        self._unacked_messages: set[object] = set()
        self.flow_active = True
        self.sought: list[tuple[FakeTP, int]] = []
        self.resumed: list[FakeTP] = []

    def assignment(self) -> set[FakeTP]:
        return {self.tp, FakeTP("app-profiles-changelog", 0)}

    async def highwaters(self, *tps: FakeTP) -> dict[FakeTP, int]:
        return dict.fromkeys(tps, self.end)

    def resume_partitions(self, tps: list[FakeTP]) -> None:
        self.resumed += tps

    async def seek(self, tp: FakeTP, offset: int) -> None:
        self.sought.append((tp, offset))


class FakeFlowControl:
    def is_active(self) -> bool:
        return True


class FakeApp:
    rebalancing = False
    in_recovery = False
    flow_control = FakeFlowControl()
    _fetcher = FakeFetcher()

    def __init__(self, consumer: FakeConsumer) -> None:
        self._consumer = consumer


class Exited(Exception):
    pass


def exit_for_test(code: int) -> NoReturn:
    raise Exited(code)


async def test_the_watchdog_unsticks_then_exits_and_counts_both(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer(end=100, committed=40)
    now = [0.0]
    metrics = Metrics.create(CollectorRegistry())
    watchdog = StallWatchdog(
        app=FakeApp(consumer),
        topics=frozenset({"clicks"}),
        stall_seconds=STALL,
        stalls=metrics.consumer_stalls,
        clock=lambda: now[0],
        exit=exit_for_test,
    )
    assert await watchdog.check() is Action.none
    now[0] = 60.0
    assert await watchdog.check() is Action.unstick
    assert consumer.resumed == [consumer.tp]
    assert consumer.sought == [(consumer.tp, 40)]
    logged = caplog.records[-1].getMessage()
    assert "clicks[0] end=100 committed=40" in logged
    assert "paused by Faust, not active, 2 acked from offset 41" in logged
    now[0] = 120.0
    with pytest.raises(Exited) as exited:
        await watchdog.check()
    assert exited.value.args == (STALL_EXIT_CODE,)
    value = metrics.registry.get_sample_value
    assert value("nudge_consumer_stalls_total", {"action": "unstick"}) == 1
    assert value("nudge_consumer_stalls_total", {"action": "exit"}) == 1


async def test_no_check_while_the_worker_rebalances() -> None:
    app = FakeApp(FakeConsumer(end=100, committed=40))
    app.rebalancing = True
    now = [0.0]
    watchdog = StallWatchdog(
        app=app,
        topics=frozenset({"clicks"}),
        stall_seconds=STALL,
        stalls=Metrics.create(CollectorRegistry()).consumer_stalls,
        clock=lambda: now[0],
        exit=exit_for_test,
    )
    for now[0] in (0.0, 60.0, 120.0, 180.0):
        assert await watchdog.check() is Action.none


async def test_a_failed_read_starts_the_clocks_again() -> None:
    consumer = FakeConsumer(end=100, committed=40)
    now = [0.0]
    watchdog = StallWatchdog(
        app=FakeApp(consumer),
        topics=frozenset({"clicks"}),
        stall_seconds=STALL,
        stalls=Metrics.create(CollectorRegistry()).consumer_stalls,
        clock=lambda: now[0],
        exit=exit_for_test,
    )
    assert await watchdog.check() is Action.none
    working = consumer.highwaters

    async def broker_down(*tps: FakeTP) -> dict[FakeTP, int]:
        raise ConnectionError("broker down")

    consumer.highwaters = broker_down  # type: ignore[method-assign]
    now[0] = 50.0
    assert await watchdog.check() is Action.none
    consumer.highwaters = working  # type: ignore[method-assign]
    now[0] = 70.0
    assert await watchdog.check() is Action.none  # not 70 s since the first reading
    now[0] = 130.0
    assert await watchdog.check() is Action.unstick
