"""Microseconds per event for the pure core: decode, then ``engine.on_event``.

``python -m benchmarks.core_micro [--events N] [--warm] [--profile] [--no-write]``
writes ``benchmarks/results/core-micro.md`` (``core-micro-warm.md`` with
``--warm``: the purchase model is warm, so scoring runs River, not the
prior). In this process, no broker and no Faust: a seeded simulated shop
(sampled as ``benchmarks.run`` samples it) is encoded to the bytes a worker
consumes, then

* **decode**: :func:`schemas.decode` of every message, with the worker's
  default limits;
* **step**: every decoded event through the core as
  ``streams.ingest.Ingestor.handle`` does it, in memory: move the partition's
  watermark, fire what it made due (``on_deadline``, ``expire_labels``),
  ``engine.on_event`` with the default :class:`EngineConfig` and the cold
  models a fresh worker scores with (:class:`streams.models.ModelRegistry`),
  then stage the state as ``CustomerStore.save`` does. ``on_event`` is
  timed call by call inside that loop; ``step`` is the whole loop.

Each phase is repeated (fresh state each time) and the best repeat is
reported, wall time (``time.perf_counter``) and process CPU time
(``time.process_time``), with garbage collection off while timing. The
**digest** is a SHA-256 over every decoded event's JSON, every message the
core returned (destination and bytes, in order, skip reasons included) and
the final per-customer state's bytes: an optimisation must leave it
unchanged. ``--profile`` prints a cProfile top 30 (by own and by cumulative
time) of one decode and step pass instead of timing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import platform
import pstats
import random
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.stats import cpu_model
from online_models.labels import Pending
from online_models.propensity import ENGAGEMENT_MODEL, PURCHASE_MODEL
from online_models.trainer import Trainer
from schemas import DecodeError, DecodeLimits, TopicKind, decode, encode
from schemas.codec import InboundEvent
from streams.core import engine
from streams.core.engine import Deadlines, EngineConfig, Models, Result
from streams.core.profile import Profile, Tombstone
from streams.ingest import CustomerStore, Partitions, due_steps
from streams.models import ModelRegistry
from streams.simulator import SimulationConfig, events

RESULTS = Path(__file__).resolve().parent / "results"

WALL = datetime(2026, 1, 1, tzinfo=UTC)
"""The fixed wall clock decode checks future timestamps against (the run ends before it)."""

LIMITS = DecodeLimits(max_bytes=65_536, max_future_skew=timedelta(seconds=300))
"""The worker's default decode limits (``Settings``)."""

PARTITIONS = 4
LATENESS = timedelta(seconds=300)
"""The worker's default allowed lateness (``Settings.allowed_lateness_seconds``)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed message: its topic kind, partition and value bytes."""

    kind: TopicKind
    partition: int
    value: bytes


def simulate(count: int, seed: int, customers: int, days: float) -> list[Message]:
    """``count`` events sampled uniformly (order kept) from a seeded shop, as bytes.

    As ``benchmarks.run.simulate``: a uniform sample keeps the shop's real
    mix instead of the attribute syncs every customer starts with. The
    partition is ``crc32(customer)`` (Kafka's murmur2 spreads differently).
    """
    duration = timedelta(days=days)
    start = (WALL - duration - timedelta(hours=1)).replace(minute=0)
    config = SimulationConfig(seed=seed, customers=customers, start=start, duration=duration)
    rng = random.Random(seed)
    reservoir: list[tuple[int, Message]] = []
    for seen, record in enumerate(events(config), start=1):
        slot = len(reservoir) if len(reservoir) < count else rng.randrange(seen)
        if slot < count:
            customer = record.event.customer_id
            message = Message(
                record.kind, zlib.crc32(customer.encode()) % PARTITIONS, encode(record.event)
            )
            if slot == len(reservoir):
                reservoir.append((seen, message))
            else:
                reservoir[slot] = (seen, message)
    reservoir.sort(key=lambda pair: pair[0])
    return [message for _, message in reservoir]


def decode_all(messages: Sequence[Message]) -> list[InboundEvent]:
    """Decode every message as the worker does; a simulated message never fails."""
    decoded: list[InboundEvent] = []
    for message in messages:
        outcome = decode(message.kind, message.value, now=WALL, limits=LIMITS)
        if isinstance(outcome, DecodeError):
            raise AssertionError(f"simulated event failed to decode: {outcome.detail}")
        decoded.append(outcome)
    return decoded


@dataclass
class Shell:
    """``Ingestor.handle`` and ``Ingestor.fire_due`` for valid events, minus Kafka and metrics.

    It keeps state in the worker's own :class:`CustomerStore` (over dicts)
    and :class:`Partitions`, and takes due work with the worker's
    :func:`due_steps`; every message the core returns is fed to ``digest``.
    """

    config: EngineConfig
    models: Models
    store: CustomerStore = field(
        default_factory=lambda: CustomerStore(profiles={}, deadlines={}, pending={})
    )
    partitions: Partitions = field(default_factory=lambda: Partitions(lateness=LATENESS))
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    on_event_seconds: float = 0.0

    def handle(self, partition: int, event: InboundEvent) -> None:
        """Clock, due work, ``on_event`` (timed), store: one valid event."""
        mark = self.partitions.clock(partition).observe(event.occurred_at)
        self.partitions.clocks[partition] = mark
        now = mark.now() or event.occurred_at
        self.fire_due(partition, now)
        customer = event.customer_id
        before = self.store.load(customer)
        started = time.perf_counter()
        after = engine.on_event(
            before.profile, before.deadlines, before.pending, event, now, self.models, self.config
        )
        self.on_event_seconds += time.perf_counter() - started
        if not after.applied:
            self.digest.update(f"skipped:{after.skipped}\n".encode())
            return
        self.commit(partition, customer, before, after)

    def commit(self, partition: int, customer: str, before: Result, after: Result) -> None:
        """Stage the new state, index what is due, send (``Ingestor._commit``)."""
        self.store.save(partition, customer, before, after)
        self.partitions.remember(partition, customer, after)
        for message in after.messages:
            self.digest.update(message.destination.value.encode() + b":" + message.value + b"\n")

    def fire_due(self, partition: int, now: datetime) -> None:
        """``Ingestor.fire_due``: deadlines in order, then label horizons."""
        for customer in self.partitions.due.pop_due(partition, now):
            state = self.store.load(customer)
            for before, after in due_steps(state, now, self.config):
                self.commit(partition, customer, before, after)
                state = after
            self.partitions.remember(partition, customer, state)

    def final_digest(self) -> str:
        """The digest of the messages so far and of every customer's final state."""
        digest = self.digest.copy()
        for customer in sorted(self.store.staged):
            state = self.store.staged[customer].state
            parts: list[Profile | Tombstone | Deadlines | Pending | None] = [
                state.profile,
                state.deadlines,
                state.pending,
            ]
            for part in parts:
                digest.update(b"-" if part is None else part.to_bytes())
                digest.update(b"\n")
        return digest.hexdigest()


def cold_models() -> Models:
    """The scorers of a fresh worker: no snapshot yet, so each model serves its prior."""
    configs = {model.name: model for model in (PURCHASE_MODEL, ENGAGEMENT_MODEL)}
    return ModelRegistry(configs, {}).engine_models()


def warm_models() -> Models:
    """Scorers of a worker whose purchase model is warm (``--warm``): River, not the prior.

    The model learns the purchase examples of a small seeded shop run through
    the core (``benchmarks.models_offline.labelled_stream``), as the trainer
    would, and is served from its snapshot as a worker serves it. The
    engagement model has no examples there, so it stays on its prior.
    """
    from benchmarks.models_offline import labelled_stream  # numpy: only when asked

    warm = {m.name: replace(m, min_positives=1) for m in (PURCHASE_MODEL, ENGAGEMENT_MODEL)}
    simulation = SimulationConfig(seed=2, customers=1_000, duration=timedelta(days=4))
    trainer = Trainer.create(warm.values())
    for example in labelled_stream(simulation).examples:
        trainer.learn_one(example)
    return ModelRegistry(warm, Trainer.model_snapshots(trainer.snapshot())).engine_models()


def run_core(
    messages: Sequence[Message], decoded: Sequence[InboundEvent], models: Models
) -> tuple[Shell, float, float]:
    """One pass of every event through a fresh shell: the shell, wall and CPU seconds."""
    shell = Shell(EngineConfig(), models)
    wall, cpu = time.perf_counter(), time.process_time()
    for message, event in zip(messages, decoded, strict=True):
        shell.handle(message.partition, event)
    return shell, time.perf_counter() - wall, time.process_time() - cpu


@dataclass(frozen=True)
class Timing:
    """Best-of-repeats microseconds per event of one phase, wall and process CPU."""

    phase: str
    wall_us: float
    cpu_us: float


def decoded_digest(decoded: Sequence[InboundEvent]) -> str:
    """SHA-256 of every decoded event's class and JSON form, in order."""
    digest = hashlib.sha256()
    for event in decoded:
        digest.update(type(event).__name__.encode() + b":" + encode(event) + b"\n")
    return digest.hexdigest()


def measure(messages: Sequence[Message], repeats: int, models: Models) -> tuple[list[Timing], str]:
    """Time decode and the core step ``repeats`` times each; the best timings and the digest."""
    n = len(messages)
    decode_runs: list[tuple[float, float]] = []
    core_runs: list[tuple[float, float, float]] = []
    digests: set[str] = set()
    decoded: list[InboundEvent] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            decoded = decode_all(messages)
            decode_runs.append((time.perf_counter() - wall, time.process_time() - cpu))
            shell, wall_s, cpu_s = run_core(messages, decoded, models)
            core_runs.append((shell.on_event_seconds, wall_s, cpu_s))
            digests.add(decoded_digest(decoded) + shell.final_digest())
            del shell
            gc.collect()
    finally:
        gc.enable()
    if len(digests) != 1:
        raise AssertionError("the core gave different outputs on identical runs")
    digest = hashlib.sha256(digests.pop().encode()).hexdigest()
    best_decode = min(decode_runs)
    best_on_event = min(run[0] for run in core_runs)
    best_step = min(core_runs, key=lambda run: run[1])
    timings = [
        Timing("decode", best_decode[0] / n * 1e6, best_decode[1] / n * 1e6),
        Timing("engine.on_event", best_on_event / n * 1e6, float("nan")),
        Timing("step (clock, due work, on_event, store)", *(s / n * 1e6 for s in best_step[1:])),
    ]
    return timings, digest


def profile(messages: Sequence[Message], top: int, models: Models) -> None:
    """Print a cProfile of decode plus one core pass, top ``top`` by own and cumulative time."""
    profiler = cProfile.Profile()
    gc.collect()
    gc.disable()  # a collection's pause would be charged to whatever allocated last
    try:
        profiler.enable()
        decoded = decode_all(messages)
        run_core(messages, decoded, models)
        profiler.disable()
    finally:
        gc.enable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"per event: divide by {len(messages):,}")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def markdown(
    timings: Sequence[Timing], digest: str, n: int, repeats: int, command: str, machine: str
) -> str:
    """The results page: one table, the command, the machine and the digest."""
    lines = [
        "# Core: microseconds per event",
        "",
        f"Command: `{command}`. {machine}; one process, one thread, garbage collection off "
        f"while timing; {n:,} simulated events, best of {repeats}. "
        "Written by [`benchmarks/core_micro.py`](../core_micro.py).",
        "",
        "| phase | wall µs/event | CPU µs/event |",
        "|---|---:|---:|",
    ]
    for t in timings:
        cpu = "-" if t.cpu_us != t.cpu_us else f"{t.cpu_us:.1f}"
        lines.append(f"| {t.phase} | {t.wall_us:.1f} | {cpu} |")
    lines += ["", f"Output digest (decoded events, messages, final state): `{digest}`", ""]
    return "\n".join(lines)


def _machine() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    return f"{cpu_model(cpuinfo)}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Simulate, then time (or ``--profile``) decode and the core step; write the results."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core_micro", description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile top 30 instead")
    parser.add_argument("--warm", action="store_true", help="score with a warm purchase model")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(args_in)
    messages = simulate(args.events, args.seed, args.customers, args.days)
    models = warm_models() if args.warm else cold_models()
    if args.profile:
        profile(messages, 30, models)
        return 0
    timings, digest = measure(messages, args.repeats, models)
    command = " ".join(["python -m benchmarks.core_micro", *args_in])
    report = markdown(timings, digest, len(messages), args.repeats, command, _machine())
    print(report)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / ("core-micro-warm.md" if args.warm else "core-micro.md")).write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
