"""Microseconds per event for the models' hot path: features, predict, learn.

``python -m benchmarks.models_micro [--quick]`` writes
``benchmarks/results/models-micro.md`` and ``.json``. In this process, no
broker: each operation is timed in a loop (``time.perf_counter_ns``) and the
median over repeats is reported, per call.

* **Profiles** are realistic: a simulated shop (``streams.simulator``, seeded)
  is applied with the reducer, and three customers are picked by history
  size: a first-time visitor (one event), the median customer and the
  customer with the most events. The event scored is that customer's last.
* **Features**: :func:`online_models.features.features` on each profile.
* **Model**: the purchase model with its defaults, warmed on the labelled
  examples of a small simulated run (the real features and labels, made as in
  ``benchmarks.models_offline``). ``score`` is the model's raw probability,
  ``prediction`` what a worker serves (with the warm check), ``learn`` one
  example, ``trainer.learn_one`` the trainer's step (score, quality update,
  learn), and snapshot/restore of the model as a worker refreshes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.models_offline import labelled_stream
from benchmarks.stats import cpu_model
from online_models.features import features
from online_models.labels import LabelledExample
from online_models.propensity import PURCHASE_MODEL, PropensityModel
from online_models.trainer import Trainer
from schemas.codec import InboundEvent
from streams.core.engine import SCORED_EVENTS
from streams.core.profile import Profile, Tombstone
from streams.core.reducer import ProfileConfig, apply
from streams.simulator import SimulationConfig, events

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Timing:
    """One operation: the median and the spread of its per-call time, in microseconds."""

    name: str
    detail: str
    median_us: float
    min_us: float
    max_us: float
    calls: int
    repeats: int


def time_per_call(
    call: Callable[[int], object], *, number: int, repeat: int
) -> tuple[float, float, float]:
    """Median, min and max over ``repeat`` loops of ``number`` calls, in µs per call.

    ``call`` gets the call's index, so it can cycle through inputs.
    """
    if number < 1 or repeat < 1:
        raise ValueError("number and repeat must be at least 1")
    per_call: list[float] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.perf_counter_ns()
            for i in range(number):
                call(i)
            per_call.append((time.perf_counter_ns() - started) / number / 1000.0)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(per_call), min(per_call), max(per_call)


@dataclass(frozen=True)
class Scored:
    """A customer's profile after their last event, that event, and its time."""

    label: str
    profile: Profile
    event: InboundEvent
    now: datetime


def realistic_profiles(seed: int, customers: int, days: int) -> list[Scored]:
    """A first-time visitor, the median customer and the longest history of a simulated shop.

    Each is taken at their last scored event (a visit, view, search or cart
    step), with the profile as that event left it, as the engine scores.
    """
    config = ProfileConfig()
    state: dict[str, Profile | Tombstone | None] = {}
    scored: dict[str, Scored] = {}
    first: Scored | None = None
    simulation = SimulationConfig(seed=seed, customers=customers, duration=timedelta(days=days))
    for record in events(simulation):
        event = record.event
        step = apply(state.get(event.customer_id), event, config)
        state[event.customer_id] = step.profile
        if not (step.applied and isinstance(step.profile, Profile)):
            continue
        if event.type in SCORED_EVENTS:
            at = event.occurred_at
            scored[event.customer_id] = Scored("", step.profile, event, at)
            if first is None and event.type == "product_view":
                # The same view as someone's very first event.
                alone = apply(None, event, config).profile
                assert isinstance(alone, Profile)
                first = Scored("first-time visitor (1 product view)", alone, event, at)
    ranked = sorted(
        scored.values(), key=lambda s: (s.profile.events_applied, s.profile.customer_id)
    )
    if first is None or not ranked:
        raise ValueError("the simulation scored nobody: simulate more customers or days")
    out = [first]
    for label, pick in (
        ("median customer", ranked[len(ranked) // 2]),
        ("longest history", ranked[-1]),
    ):
        profile = pick.profile
        detail = (
            f"{label} ({profile.events_applied} events, {profile.purchases.order_count} orders, "
            f"{profile.engagement.sent} emails)"
        )
        out.append(dataclasses.replace(pick, label=detail))
    return out


def run(quick: bool) -> tuple[list[Timing], dict[str, Any]]:
    number, repeat = (500, 5) if quick else (5_000, 9)
    timings: list[Timing] = []

    def add(name: str, detail: str, call: Callable[[int], object], n: int = number) -> None:
        median, low, high = time_per_call(call, number=n, repeat=repeat)
        timings.append(Timing(name, detail, median, low, high, n, repeat))
        print(f"{name:<28} {detail:<60} {median:9.1f} µs", file=sys.stderr)

    config = ProfileConfig()
    profiles = realistic_profiles(seed=3, customers=300 if quick else 2_000, days=30)
    for scored in profiles:

        def extract(_i: int, s: Scored = scored) -> object:
            return features(s.profile, s.event, s.now, config)

        add("features", scored.label, extract)

    days = 4 if quick else 7
    stream = labelled_stream(
        SimulationConfig(seed=2, customers=1_000 if quick else 1_500, duration=timedelta(days=days))
    )
    examples: Sequence[LabelledExample] = stream.examples
    warm = dataclasses.replace(PURCHASE_MODEL, min_positives=1)
    trainer = Trainer.create((warm,))
    for example in examples:
        trainer.learn_one(example)
    model = trainer.models[warm.name]
    xs = [e.features for e in examples]
    size = len(xs)
    detail = f"purchase model, {model.examples:,} examples learned, {len(xs[0])} features"
    add("predict: score", detail, lambda i: model.score(xs[i % size]))
    add("predict: prediction (served)", detail, lambda i: model.prediction(xs[i % size]))
    learner = PropensityModel.restore(model.snapshot())

    def learn(i: int) -> None:
        learner.learn(xs[i % size], examples[i % size].label)

    def predict_learn(i: int) -> None:
        learner.score(xs[i % size])
        learner.learn(xs[i % size], examples[i % size].label)

    add("learn", detail, learn)
    add("predict + learn", detail, predict_learn)
    add(
        "trainer.learn_one",
        "score, quality (rolling AUC, log loss, calibration, ADWIN), learn",
        lambda i: trainer.learn_one(examples[i % size]),
    )
    # River's rolling AUC buffers its updates until it is read; the worker
    # reads it at every publication, so a published snapshot holds at most
    # one interval of them. Read it here, as after a publication.
    model.quality.as_dict()
    blob = model.snapshot()
    snapshots = max(50, number // 50)
    add(
        "model snapshot",
        f"{len(blob):,} bytes, with its 2,000-prediction quality window",
        lambda _i: model.snapshot(),
        snapshots,
    )
    add(
        "model restore",
        "what a worker does on a new snapshot",
        lambda _i: PropensityModel.restore(blob),
        snapshots,
    )
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(_read("/proc/cpuinfo")),
        "date": time.strftime("%Y-%m-%d"),
    }
    return timings, machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def markdown(timings: Sequence[Timing], machine: dict[str, Any], command: str) -> str:
    lines = [
        "# Models: microseconds per call",
        "",
        f"Command: `{command}`. {machine['cpu']}, Python {machine['python']}, "
        f"{machine['date']}; one process, one thread, garbage collection off while timing. "
        "Written by [`benchmarks/models_micro.py`](../models_micro.py).",
        "",
        "| operation | on | median µs | min µs | max µs | calls x repeats |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in timings:
        lines.append(
            f"| {t.name} | {t.detail} | {t.median_us:.1f} | {t.min_us:.1f} | {t.max_us:.1f} "
            f"| {t.calls:,} x {t.repeats} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.models_micro",
        description="Microseconds per call for feature extraction, predict and learn.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(args_in)
    timings, machine = run(args.quick)
    command = " ".join(["python -m benchmarks.models_micro", *args_in])
    report = markdown(timings, machine, command)
    print(report)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "models-micro.md").write_text(report)
        document = {
            "machine": machine,
            "command": command,
            "timings": [dataclasses.asdict(t) for t in timings],
        }
        (args.out / "models-micro.json").write_bytes(
            orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
