"""Broker faults: the broker dies under running workers, comes back, and nothing is lost.

A worker must ride out a broker that disappears (a crash, a restart, a
network cut): keep running, say in its log that it lost the broker and that
it found it again, and resume where it was, with the guarantee of
ARCHITECTURE.md ("Processing guarantee") intact. These tests start their
own broker (the session's cannot be stopped under the other tests), kill it
with SIGKILL, so no client gets a clean goodbye, and start it again ten
seconds later on the same ports and data directory:

1. mid-stream, one worker: every profile and every output equals what a
   fault-free run on fresh topics gives (the approach of ``test_crash.py``);
2. in the middle of a rebalance, two workers: every event is applied exactly
   once, and every partition of every inbound topic is consumed afterwards.
   The same test also kills the joining worker instead, mid-rebalance, and
   starts it again. A stall there must be recovered by the stall watchdog
   (the test restarts a worker it makes exit); a lost event fails it, with
   its evidence (see the test).

The test's own clients retry across the outage. kafka-python backs off
reconnecting for up to 30 s by default; the clients here cap it at one
second, so a test does not wait long once the broker is back.
kafka-python 3.0.12 also leaks the socket of every refused connection
(``kafka/net/inet.py`` raises from ``sock_connect`` without closing it):
their ResourceWarning, and only theirs (a socket never connected), is
ignored here, and they are collected before the next test.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import random
import re
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from schemas import TopicKind, encode
from streams.core.profile import Profile, state_from_bytes
from streams.localkafka import LocalKafka, free_port
from streams.simulator import SimulationConfig, events
from tests.integration.test_crash import (
    SETTINGS,
    Message,
    by_id,
    decisions,
    examples,
    outputs,
    profile_document,
)
from tests.support.events import valid_event
from tests.support.kafka_io import latest_by_key, read_all, wait_for
from tests.support.ordered import InOrder, partition_of, wait_caught_up, wait_consuming
from tests.support.worker import STALL_SETTINGS, Supervisor, WorkerEnv, running_worker

pytestmark = [
    pytest.mark.integration,
    # The sockets kafka-python 3.0.12 leaks: never connected, so no peer address.
    pytest.mark.filterwarnings(
        r"ignore:unclosed <socket\.socket [^>]*laddr=\('0\.0\.0\.0', \d+\)>$:ResourceWarning"
    ),
]

OUTAGE_SECONDS = 10.0
STALL_RECOVERY = 120.0
"""How long a stalled group may take to commit again: the watchdog's unstick and exit
periods (``STALL_SETTINGS``), a restart, and the group waiting out the exited member."""
BROKER_START_TIMEOUT = 180.0
SHOP = SimulationConfig(
    seed=41,
    customers=100,
    start=datetime(2026, 10, 19, tzinfo=UTC),
    duration=timedelta(days=1),
)
KINDS = tuple(TopicKind)

LOST = r"ERROR\s+aiokafka: Unable connect to node with id \d+: .*Connect call failed"
"""What aiokafka logs for every refused connection while the broker is away."""
FOUND = r"aiokafka\.consumer\.group_coordinator: Discovered coordinator"
"""What it logs once the broker answers again and the group has a coordinator."""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of this module's own: its tests kill and restart it."""
    kafka = LocalKafka.ephemeral(tmp_path_factory.mktemp("faulty-kafka"))
    kafka.start(timeout=BROKER_START_TIMEOUT)
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(autouse=True)
def kafka_python_across_outages(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Make the test's kafka-python clients retry every second; collect the sockets they leak.

    Each refused connection is an ERROR record whose exception holds the
    leaked socket: captured, the records would keep hundreds of sockets
    alive past the test (and fill a failure report), so kafka-python's
    errors are not captured. What is left in reference cycles is collected
    here, under this module's warning filter, instead of in a later test.
    """
    for client in (KafkaProducer, KafkaAdminClient):
        monkeypatch.setitem(client.DEFAULT_CONFIG, "reconnect_backoff_max_ms", 1000)
    caplog.set_level(logging.CRITICAL, logger="kafka")
    yield
    gc.collect()


@contextmanager
def broker_down(broker: LocalKafka) -> Iterator[None]:
    """SIGKILL the broker, run the body, then start it again on the same ports and data.

    The broker stays down for :data:`OUTAGE_SECONDS` in all (the body's time
    included); on the way out, whatever happened in the body, it is started
    again.
    """
    pid = broker.status().pid
    assert pid is not None, "the broker is not running"
    began = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    broker.stop(grace=10.0)  # reaps the process and removes its PID file
    try:
        yield
    finally:
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))
        broker.start(timeout=BROKER_START_TIMEOUT)


Written = tuple[str, str, Any]
"""An event sent: customer, event id, and where it was written (kafka-python's RecordMetadata)."""


def first_offsets(written: list[Written]) -> dict[tuple[str, int], int]:
    """The first offset each topic partition got among ``written``."""
    first: dict[tuple[str, int], int] = {}
    for _, _, where in written:
        tp = (where.topic, where.partition)
        first[tp] = min(first.get(tp, where.offset), where.offset)
    return first


def never_applied(
    env: WorkerEnv,
    written: list[Written],
    first: dict[tuple[str, int], int],
    customers: list[str],
) -> list[str]:
    """Where each event of ``customers`` their stored profile does not hold was written.

    Marks an event that was the first its partition got after the rebalance
    began (``first``), the signature of the loss this file knows.
    """
    stored = latest_by_key(read_all(env.bootstrap, env.changelog("profiles")))
    found = []
    for customer in customers:
        raw = stored.get(customer.encode())
        state = state_from_bytes(raw) if raw else None
        held = set(state.recent_event_ids) if isinstance(state, Profile) else set()
        for who, event_id, where in written:
            if who == customer and event_id not in held:
                place = f"{where.topic}[{where.partition}]@{where.offset}"
                if first.get((where.topic, where.partition)) == where.offset:
                    place += " (its partition's first event after the rebalance began)"
                found.append(f"{customer} {event_id} at {place}")
    return found


class Resending(InOrder):
    """:class:`InOrder`, able to say whether an event can be sent without a settle.

    While the broker is down a settle would wait for events the worker cannot
    get; events that extend the current run can be sent, and the producer
    delivers them once the broker is back.
    """

    def fits_run(self, kind: TopicKind, key: bytes) -> bool:
        topic = self.env.topic(kind.value)
        return self._run.get(partition_of(key, self.env.partitions), topic) == topic


def reconnected(log: str, app_id: str) -> bool:
    """Whether the log shows lost connections, and the group coordinator found after the last."""
    lost = [m.end() for m in re.finditer(LOST, log)]
    found = rf"INFO\s+{FOUND} \d+ for group {re.escape(app_id)}\b"
    return bool(lost) and re.search(found, log[lost[-1] :]) is not None


def coordinator_ready(admin: Any, group: str) -> bool:
    """Whether the broker answers for ``group``: a restarted broker first reloads its groups."""
    try:
        admin.list_group_offsets({group: None})
    except KafkaError as error:
        if not error.retriable:
            raise
        return False
    return True


def behind(admin: Any, env: WorkerEnv) -> dict[str, str]:
    """Inbound partitions the group has not committed to their end: ``topic[p]: committed/end``."""
    committed = admin.list_group_offsets({env.app_id: None}).get(env.app_id, {})
    tps = [TopicPartition(env.topic(k.value), p) for k in KINDS for p in range(env.partitions)]
    with closing(KafkaConsumer(bootstrap_servers=env.bootstrap)) as consumer:
        ends = consumer.end_offsets(tps)
    done = {tp: committed[tp].offset if tp in committed else 0 for tp in tps}
    return {
        f"{tp.topic}[{tp.partition}]": f"{done[tp]}/{ends[tp]}" for tp in tps if done[tp] < ends[tp]
    }


def wait_consumed(
    admin: Any, env: WorkerEnv, *, timeout: float, workers: Iterable[Supervisor] = ()
) -> dict[str, str]:
    """Wait until the group has committed every inbound partition; return what is still behind.

    Meanwhile ``workers`` the stall watchdog made exit are restarted.
    """
    deadline = time.monotonic() + timeout
    while (lagging := behind(admin, env)) and time.monotonic() < deadline:
        for worker in workers:
            worker.check()
        time.sleep(0.5)
    return lagging


def shop_messages() -> list[Message]:
    """A seeded simulated shop's messages, in event-time order."""
    return [(r.kind, r.event.customer_id.encode(), encode(r.event)) for r in events(SHOP)]


def apply_shop(
    broker: LocalKafka,
    env: WorkerEnv,
    log: Path,
    messages: list[Message],
    cut_at: int | None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], int]:
    """Apply ``messages`` in order through one worker; kill the broker at ``cut_at``.

    At ``cut_at`` the messages sent so far are delivered, the worker is given
    a moment to handle some of them (and commit fewer), and the broker is
    killed. The events that fit the current run are sent into the outage.
    Returns every customer's profile, the outputs, and how many events were
    sent while the broker was down.
    """
    sent_blind = 0
    with (
        closing(KafkaAdminClient(bootstrap_servers=env.bootstrap)) as admin,
        # The watchdog can unstick this worker in-process; a restart would
        # throw the sink's count off, so an exit fails the test below.
        running_worker(env, log, extra=SETTINGS | STALL_SETTINGS) as worker,
    ):
        sink = Resending(env, log)
        stop = len(messages) if cut_at is None else cut_at
        for kind, key, value in messages[:stop]:
            sink.send(kind, key, value)
        if stop < len(messages):
            sink.deliver()
            time.sleep(0.1)  # some handled, fewer committed
            with broker_down(broker):
                while stop < len(messages) and sink.fits_run(*messages[stop][:2]):
                    sink.send(*messages[stop])
                    stop += 1
                    sent_blind += 1
            wait_for(
                lambda: coordinator_ready(admin, env.app_id),
                timeout=60,
                what="the restarted broker to load the group",
            )
            # The same process counts on: re-base once it has committed everything.
            sink.restarted(admin, log)
            for kind, key, value in messages[stop:]:
                sink.send(kind, key, value)
        sink.close()
        wait_caught_up(admin, env)
        assert worker.poll() is None, "the worker exited"
        customers = sorted({key.decode() for _, key, _ in messages})
        profiles = {c: profile_document(env.web_port, c) for c in customers}
    return profiles, outputs(env), sent_blind


def test_a_broker_killed_mid_stream_loses_nothing_once_it_is_back(
    broker: LocalKafka, tmp_path: Path
) -> None:
    """The worker outlives a ten-second broker outage and ends as a fault-free run does."""
    messages = shop_messages()
    logs = [tmp_path / name / "worker.log" for name in ("calm", "cut")]
    for log in logs:
        log.parent.mkdir()
    calm, calm_out, _ = apply_shop(
        broker, WorkerEnv.fresh(broker.bootstrap_servers), logs[0], messages, None
    )
    env = WorkerEnv.fresh(broker.bootstrap_servers)
    log = logs[1]
    cut, cut_out, sent_blind = apply_shop(broker, env, log, messages, len(messages) * 2 // 5)

    text = log.read_text(errors="replace")
    assert reconnected(text, env.app_id), f"no reconnection logged:\n{text[-4000:]}"
    assert [c for c in calm if cut[c] != calm[c]] == []
    for name in ("triggers", "holdout"):
        assert set(by_id(cut_out[name], "trigger_id")) == set(by_id(calm_out[name], "trigger_id"))
    assert decisions(cut_out["decisions"]) == decisions(calm_out["decisions"])
    assert examples(cut_out["training"]) == examples(calm_out["training"])

    # Not vacuous: outputs to lose, and events in the producer when the broker died.
    assert len(calm_out["decisions"]) > 10
    assert len(calm_out["training"]) > 0
    assert sent_blind > 0
    print(
        f"{len(messages)} events, {sent_blind} sent into the outage, "
        f"{len(re.findall(LOST, text))} refused connections logged"
    )


def events_applied(port: int, customer: str) -> int | None:
    """How many events the customer's profile has applied, or None while rebalancing."""
    url = f"http://127.0.0.1:{port}/customers/{customer}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(orjson.loads(response.read())["profile"]["events_applied"])
    except urllib.error.HTTPError as error:
        body = error.read()
        if error.code == 404 and b"no profile" in body:
            return 0
        if error.code == 503:
            return None
        raise AssertionError(f"GET {url}: {error.code} {body[:2000]!r}") from error


def applied_counts(port: int, customers: Iterable[str]) -> dict[str, int] | None:
    """Every customer's count of applied events, or None if one cannot be read yet."""
    counts = {}
    for customer in customers:
        count = events_applied(port, customer)
        if count is None:
            return None
        counts[customer] = count
    return counts


def wait_applied(port: int, expected: Counter[str], *, timeout: float, what: str) -> None:
    """Wait until every customer in ``expected`` has applied exactly that many events."""
    try:
        wait_for(lambda: applied_counts(port, expected) == expected, timeout=timeout, what=what)
    except TimeoutError:
        pytest.fail(f"{what}, after {timeout:g} s: {applied_counts(port, expected)} applied")


Outbound = tuple[str, bytes, bytes]


def random_events(
    env: WorkerEnv, rng: random.Random, customers: list[str], count: int, start: datetime
) -> list[Outbound]:
    """``count`` valid events of every kind for random ``customers``, a second apart."""
    out = []
    for n in range(count):
        customer, kind = rng.choice(customers), KINDS[n % len(KINDS)].value
        event = valid_event(rng, kind, customer, start + timedelta(seconds=n))
        out.append((env.topic(kind), customer.encode(), orjson.dumps(event)))
    return out


def one_per_partition(env: WorkerEnv, rng: random.Random, at: datetime) -> list[Outbound]:
    """An event on every partition of every inbound topic, each for a new customer."""
    out = []
    for kind in (k.value for k in KINDS):
        for partition in range(env.partitions):
            n = 0
            while partition_of(f"last-{kind}-{n}".encode(), env.partitions) != partition:
                n += 1
            customer = f"last-{kind}-{n}"
            event = valid_event(rng, kind, customer, at)
            out.append((env.topic(kind), customer.encode(), orjson.dumps(event)))
    return out


@pytest.mark.parametrize("fault", ["broker-killed", "joining-worker-killed"])
def test_a_fault_mid_rebalance_applies_every_event_once_and_every_partition_resumes(
    broker: LocalKafka, tmp_path: Path, fault: str
) -> None:
    """Two workers share the group; the rebalance letting the second in is cut short.

    Either the broker dies (both workers lose it mid-rebalance), or the joining
    worker is killed with SIGKILL (the group waits for a member that is gone)
    and started again, which rebalances once more.

    An event applied twice, a worker that exits (other than by the stall
    watchdog) or no reconnection logged fail outright. Two faults were seen
    here, intermittently:

    - a stall (faust-streaming/faust#596): some inbound
      partitions stopped committing after the rebalance, with no error
      logged. Faust dropped messages it had queued for the agents when it
      "resumed" an already running flow (fixed by
      ``streams.commits.SteadyFlowControl``); whatever is left of it the
      stall watchdog must recover, unsticking the partitions or exiting the
      worker, which the test restarts as a supervisor would. A stall it does
      not recover fails the test;
    - a lost event: the first event published after the rebalance began,
      on a partition or two, was never applied, yet its offset was
      committed and no changelog record held it. Faust's fetch loop counted
      the message it was delivering as part of a fetch gap, so when a
      stream skipped it (flow suspended, older generation) the next commit
      moved past it; ``CommittingConsumer._add_gap`` stops the gap short.
      A loss now fails the test, with the events never applied as evidence.
    """
    rng = random.Random(5)
    env = WorkerEnv.fresh(broker.bootstrap_servers, partitions=4)
    joining = dataclasses.replace(env, web_port=free_port())
    customers = [f"rb{n:03d}" for n in range(40)]  # under 64 events each: dedupe is exact
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    before, during, after = (
        random_events(env, rng, customers, 300, start + timedelta(hours=h)) for h in range(3)
    )
    expected = Counter(key.decode() for _, key, _ in before + during + after)
    for name in ("first", "joining", "rejoining"):
        (tmp_path / name).mkdir()  # each worker its own working directory (data dir)

    with ExitStack() as stack:
        # Supervisors restart a worker the stall watchdog makes exit, as
        # production's would; any other exit fails the test.
        first = Supervisor(env, tmp_path / "first", stack)
        first.start()
        logs = [first.logs[0]]
        wait_consuming(logs[0])
        producer = stack.enter_context(
            closing(KafkaProducer(bootstrap_servers=env.bootstrap, linger_ms=5))
        )
        futures = [producer.send(t, key=k, value=v) for t, k, v in before]
        producer.flush(timeout=30)

        second = Supervisor(joining, tmp_path / "joining", stack)
        second.start()
        logs.append(second.logs[0])
        # The first worker revokes its partitions a second time: the group is
        # rebalancing to let the second in. Events arrive then, and the fault
        # strikes once the new assignment is handed out, while the workers
        # look up where to resume.
        wait_for(
            lambda: logs[0].read_text().count("Revoking previously assigned partitions") > 1,
            timeout=60,
            interval=0.02,
            what="the first worker to start rebalancing",
        )
        futures += [producer.send(t, key=k, value=v) for t, k, v in during]
        producer.flush(timeout=30)
        wait_for(
            lambda: logs[0].read_text().count("Setting newly assigned partitions") > 1,
            timeout=60,
            interval=0.01,
            what="the new assignment",
        )
        if fault == "broker-killed":
            with broker_down(broker):
                futures += [producer.send(t, key=k, value=v) for t, k, v in after]
        else:
            second.kill()
            futures += [producer.send(t, key=k, value=v) for t, k, v in after]
            second = Supervisor(joining, tmp_path / "rejoining", stack)
            second.start()
        producer.flush(timeout=60)
        written = [
            (key.decode(), orjson.loads(value)["event_id"], future.get(timeout=60))
            for (_, key, value), future in zip(before + during + after, futures, strict=True)
        ]

        admin = stack.enter_context(closing(KafkaAdminClient(bootstrap_servers=env.bootstrap)))
        wait_for(
            lambda: coordinator_ready(admin, env.app_id),
            timeout=60,
            what="the restarted broker to load the group",
        )
        # Once the group has committed every offset, every event was handled
        # and the profiles (staged state included) are final. A stall (no
        # commit on a partition with events waiting) is the watchdog's to
        # recover, by unsticking or a restart; one it does not recover fails.
        workers = (first, second)
        stalled = wait_consumed(admin, env, timeout=STALL_RECOVERY, workers=workers)
        assert stalled == {}, f"never committed again (committed/end offsets): {stalled}"
        counts = wait_for(
            lambda: applied_counts(env.web_port, sorted(expected)),
            timeout=60,
            what="every profile readable",
        )
        twice = {c: f"{counts[c]} of {n}" for c, n in expected.items() if counts[c] > n}
        assert twice == {}, f"events applied twice: {twice}"
        lost = {c: f"{counts[c]} of {n}" for c, n in expected.items() if counts[c] < n}
        last = one_per_partition(env, rng, start + timedelta(hours=4))
        for topic, key, value in last:
            producer.send(topic, key=key, value=value).get(timeout=30)
        stalled = wait_consumed(admin, env, timeout=STALL_RECOVERY, workers=workers)
        assert stalled == {}, f"never committed again (committed/end offsets): {stalled}"
        fed = Counter(key.decode() for _, key, _ in last)
        wait_applied(env.web_port, fed, timeout=30, what="an event on every partition")
        if fault == "broker-killed":
            # Each worker logged the lost broker and found it again. Whether it
            # also logs "Worker ready" again depends on whether its membership
            # outlived the outage (then no rebalance follows); that the group
            # resumed is what the checks above show: every partition committed
            # and an event on each applied after the outage.
            for log in logs:
                assert reconnected(log.read_text(errors="replace"), env.app_id), (
                    f"no reconnection logged in {log}"
                )
        for worker in workers:
            worker.check()  # fails if a worker exited other than by the watchdog
            if worker.stalls_logged():
                print(f"the watchdog acted ({worker.restarts} restarts):", *worker.stalls_logged())

    if lost:
        boundary = first_offsets(written[len(before) : len(before) + len(during)])
        pytest.fail(
            f"events lost in the rebalance (applied of sent): {lost}; never applied: "
            + "; ".join(never_applied(env, written, boundary, sorted(lost)))
        )
