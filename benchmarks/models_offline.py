"""Offline evaluation of the purchase model: online (River) beside batch (scikit-learn).

``python -m benchmarks.models_offline [--quick]`` (scikit-learn comes with the
``dev`` and ``bench`` extras). Not a test and not timed: it measures how well
the online model ranks and predicts on a stream whose purchase intent is
known, and writes ``benchmarks/results/models-offline.md`` and ``.json``
(``docs/models.md`` explains the columns and quotes the table).

1. **Stream.** The simulator (:func:`streams.simulator.shop.generate`,
   seeded; every customer has a latent purchase intent) yields a shop's
   events in event-time order. They go through the pure core as a worker
   applies them (:class:`Shell` mirrors ``streams.ingest.Ingestor.handle``
   and ``fire_due``): each event moves its partition's watermark (newest
   event time minus the allowed lateness), what that made due on the
   partition fires first (deadlines through ``engine.on_deadline``, label
   horizons through ``engine.expire_labels``), then ``engine.on_event``
   applies it. The ``training`` messages it returns are the labelled
   examples, in the order the training topic would hold them, so features,
   snapshot rate limits, horizons and labels are the real ones. Differences
   from a live worker: events arrive merged in event time (a worker reads its
   topics side by side), the partition is ``crc32(customer)`` rather than
   Kafka's murmur2, the served score in the profile is the prior (scores
   change no feature and no label), and snapshots still pending when the
   simulation ends are not labelled (their outcome is unknown).
2. **Online.** :class:`online_models.trainer.Trainer` learns the examples in
   that order, scoring each just before learning it (*progressive*, what the
   worker's quality metrics see). Each example is also scored by the model
   as it stood when its snapshot was taken (*served*: what a worker would
   have served then; the snapshot publication lag is ignored). Both are out
   of sample, but they differ: examples reach the trainer when their label is
   known, positives within hours and negatives a horizon later, so the
   arrival order carries the label, and a model scored at arrival can exploit
   what it has just learned about that order.
3. **Batch.** At each checkpoint *n*, scikit-learn's ``StandardScaler`` then
   ``LogisticRegression`` (L2, ``C=1``, lbfgs) is fit in hindsight on the
   first *n* examples and scored on the same *n* (in sample).
4. **Held-out tail.** The examples after the last checkpoint are scored by
   the online model frozen at the last checkpoint and by the batch model fit
   on the same examples: both out of sample, neither helped by the order.
   **The bar** (issue 4: online AUC within 0.02 of batch after 50,000
   examples) is checked there.
5. **Ablation.** The same run without the weekday features (``--ablate``),
   which let a model tell "labelled today" from "labelled yesterday".

AUC is exact (Mann-Whitney, ties counted half); log loss clamps ``p`` to
``[1e-15, 1 - 1e-15]``; both are pure helpers here, unit-tested in
``tests/unit/test_models_offline.py``. The cold-start prior and the latent
intent of each example's customer (from the simulator's truth records) are
scored beside them as references; intent is not a ceiling, since the
features also see the session.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from online_models.features import FEATURE_NAMES
from online_models.labels import PURCHASE, LabelledExample, Pending
from online_models.propensity import (
    ENGAGEMENT_MODEL,
    PURCHASE_MODEL,
    ModelConfig,
    PropensityModel,
)
from online_models.trainer import Trainer
from streams.core import engine
from streams.core.clock import Watermark
from streams.core.engine import Deadlines, Destination, EngineConfig, Models, Result
from streams.core.profile import Profile, Tombstone
from streams.due import DueIndex
from streams.simulator import CustomerTruth, SimulatedEvent, SimulationConfig, generate

RESULTS = Path(__file__).resolve().parent / "results"
CHECKPOINTS = (5_000, 10_000, 25_000, 50_000)
TAIL = 10_000
WINDOW = 5_000
BAR = 0.02
EPS = 1e-15

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- metrics


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Exact ROC AUC: the chance a random positive outscores a random negative, ties half.

    NaN when only one class is present.
    """
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    positives = sum(1 for y in labels if y)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid_rank = (i + j) / 2.0 + 1.0  # 1-based average rank of the tie group
        rank_sum += mid_rank * sum(1 for k in order[i : j + 1] if labels[k])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Mean ``-log p`` of the true class, ``p`` clamped to ``[1e-15, 1 - 1e-15]``."""
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    if not labels:
        return math.nan
    total = math.fsum(
        -math.log(min(max(p, EPS), 1.0 - EPS) if y else 1.0 - min(max(p, EPS), 1.0 - EPS))
        for y, p in zip(labels, scores, strict=True)
    )
    return total / len(labels)


# --------------------------------------------------------------------------- the stream


def partition_of(customer_id: str, partitions: int) -> int:
    """A stable partition for a customer (crc32; Kafka's murmur2 would give another spread)."""
    return zlib.crc32(customer_id.encode()) % partitions


@dataclass
class Shell:
    """An in-memory worker: three tables, a watermark and a due index per partition.

    :meth:`handle` is ``streams.ingest.Ingestor.handle`` for a valid event
    and :meth:`_fire_due` is ``streams.ingest.fire_due``, minus Kafka.
    """

    config: EngineConfig
    models: Models
    partitions: int = 4
    lateness: timedelta = timedelta(seconds=300)
    profiles: dict[str, Profile | Tombstone] = field(default_factory=dict)
    deadlines: dict[str, Deadlines] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    clocks: dict[int, Watermark] = field(default_factory=dict)
    due: DueIndex = field(default_factory=DueIndex)

    def handle(self, event: Any) -> list[LabelledExample]:
        """Apply one event; return the labelled examples it and its clock sent."""
        partition = partition_of(event.customer_id, self.partitions)
        mark = (self.clocks.get(partition) or Watermark(self.lateness)).observe(event.occurred_at)
        self.clocks[partition] = mark
        now = mark.now() or event.occurred_at
        sent = self._fire_due(partition, now)
        before = self._load(event.customer_id)
        after = engine.on_event(
            before.profile, before.deadlines, before.pending, event, now, self.models, self.config
        )
        if after.applied:
            sent += self._commit(partition, event.customer_id, before, after)
        return sent

    def _load(self, customer: str) -> Result:
        return Result(
            self.profiles.get(customer),
            self.deadlines.get(customer) or Deadlines(customer_id=customer),
            self.pending.get(customer),
        )

    def _commit(
        self, partition: int, customer: str, before: Result, after: Result
    ) -> list[LabelledExample]:
        if after.profile is not None and after.profile is not before.profile:
            self.profiles[customer] = after.profile
        if after.deadlines != before.deadlines:
            self.deadlines[customer] = after.deadlines
        if after.pending is not None and after.pending != before.pending:
            self.pending[customer] = after.pending
        self._remember(partition, customer, after)
        return [
            LabelledExample.from_bytes(message.value)
            for message in after.messages
            if message.destination is Destination.training
        ]

    def _remember(self, partition: int, customer: str, state: Result) -> None:
        self.due.add(partition, state.deadlines.next_due(), customer)
        if state.pending is not None:
            self.due.add(partition, state.pending.next_horizon_end, customer)

    def _fire_due(self, partition: int, now: Any) -> list[LabelledExample]:
        sent: list[LabelledExample] = []
        for customer in self.due.pop_due(partition, now):
            state = self._load(customer)
            after = state
            for deadline in state.deadlines.items:
                if deadline.due_at > now:
                    break
                after = engine.on_deadline(
                    after.profile, after.deadlines, after.pending, deadline, now, self.config
                )
                sent += self._commit(partition, customer, state, after)
                state = after
            pending, messages = engine.expire_labels(state.pending, now)
            if messages:
                after = Result(state.profile, state.deadlines, pending, messages)
                sent += self._commit(partition, customer, state, after)
                state = after
            self._remember(partition, customer, state)
        return sent


@dataclass(frozen=True)
class Stream:
    """One model's labelled examples from a simulated run, in training-topic order.

    ``arrivals[i]`` is the event time of the event whose handling sent
    example ``i`` (when it reached the training topic, in event time);
    ``intents[i]`` is the latent purchase intent of its customer.
    """

    examples: tuple[LabelledExample, ...]
    arrivals: tuple[datetime, ...]
    intents: tuple[float, ...]
    events: int
    other_examples: int


def labelled_stream(
    simulation: SimulationConfig,
    *,
    model: str = PURCHASE,
    partitions: int = 4,
    lateness: timedelta = timedelta(seconds=300),
    limit: int | None = None,
) -> Stream:
    """Run a simulation through :class:`Shell`; keep ``model``'s examples (up to ``limit``)."""
    config = EngineConfig()
    prior = {name: PropensityModel(c) for name, c in _configs().items()}
    models = Models(
        purchase=prior["purchase"].prediction, engagement=prior["engagement"].prediction
    )
    shell = Shell(config, models, partitions, lateness)
    intent: dict[str, float] = {}
    examples: list[LabelledExample] = []
    arrivals: list[datetime] = []
    intents: list[float] = []
    events = others = 0
    for record in generate(simulation):
        if isinstance(record, CustomerTruth):
            intent[record.customer_id] = record.intent
            continue
        if not isinstance(record, SimulatedEvent):
            continue
        events += 1
        for example in shell.handle(record.event):
            if example.model != model:
                others += 1
                continue
            examples.append(example)
            arrivals.append(record.event.occurred_at)
            intents.append(intent[example.customer_id])
        if limit is not None and len(examples) >= limit:
            break
    return Stream(
        tuple(examples[:limit]), tuple(arrivals[:limit]), tuple(intents[:limit]), events, others
    )


def in_snapshot_order(stream: Stream, horizon: timedelta) -> Stream:
    """The same examples as if every one were sent at its horizon end (snapshot order).

    A what-if, not what the worker does: positives would be learned a
    horizon later, but examples would reach the trainer in the order they
    were taken, so when they arrive says nothing about their label.
    """
    order = sorted(range(len(stream.examples)), key=lambda i: stream.examples[i].taken_at)
    examples = tuple(stream.examples[i] for i in order)
    return Stream(
        examples,
        tuple(example.taken_at + horizon for example in examples),
        tuple(stream.intents[i] for i in order),
        stream.events,
        stream.other_examples,
    )


def _configs() -> dict[str, ModelConfig]:
    return {PURCHASE_MODEL.name: PURCHASE_MODEL, ENGAGEMENT_MODEL.name: ENGAGEMENT_MODEL}


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Online:
    """What the online model did on a stream, in training-topic order.

    ``progressive[i]``: example ``i`` scored by the trainer just before it
    learned it, as the worker's quality metrics see it. ``served[i]``: the
    same example scored by the model as it stood when the snapshot was taken
    (every example that reached the training topic before then learned),
    i.e. what a worker would have served. ``frozen``: the examples after
    ``freeze_after`` scored by the model as it stood at that point.
    ``rolling``: the worker's exported quality (``Quality.as_dict``) at each
    checkpoint. All three scores are out of sample.
    """

    progressive: list[float]
    served: list[float]
    frozen: list[float]
    rolling: dict[int, dict[str, float]]


def run_online(
    stream: Stream,
    config: ModelConfig,
    *,
    checkpoints: Sequence[int] = (),
    freeze_after: int | None = None,
    drop: frozenset[str] = frozenset(),
) -> Online:
    """Predict, then learn, every example with the trainer (progressive validation).

    The snapshot publication lag of a worker (up to ``NUDGE_SNAPSHOT_EVERY_*``)
    is ignored in ``served``. ``drop`` removes features (an ablation).
    """
    examples = [_without(e, drop) for e in stream.examples] if drop else list(stream.examples)
    trainer = Trainer.create((config,))
    model = trainer.models[config.name]
    by_taken = sorted(range(len(examples)), key=lambda i: examples[i].taken_at)
    served = [math.nan] * len(examples)
    progressive: list[float] = []
    frozen_scores: list[float] = []
    frozen: PropensityModel | None = None
    rolling: dict[int, dict[str, float]] = {}
    wanted = set(checkpoints)
    next_taken = 0
    for n, (example, arrival) in enumerate(zip(examples, stream.arrivals, strict=True), start=1):
        # Every snapshot taken by now was served by the model as it stands.
        while next_taken < len(by_taken) and examples[by_taken[next_taken]].taken_at <= arrival:
            i = by_taken[next_taken]
            served[i] = model.score(examples[i].features)
            next_taken += 1
        if frozen is not None:
            frozen_scores.append(frozen.score(example.features))
        progressive.append(trainer.learn_one(example).p)
        if n in wanted:
            rolling[n] = model.quality.as_dict()
        if n == freeze_after:
            frozen = PropensityModel.restore(model.snapshot())
    return Online(progressive, served, frozen_scores, rolling)


def _without(example: LabelledExample, drop: frozenset[str]) -> LabelledExample:
    kept = {k: v for k, v in example.features.items() if k not in drop}
    return example.model_copy(update={"features": kept})


def design_matrix(
    examples: Sequence[LabelledExample], drop: frozenset[str] = frozenset()
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Features in :data:`FEATURE_NAMES` order (a missing one reads 0, ``drop`` left out)."""
    names = [name for name in FEATURE_NAMES if name not in drop]
    x = np.array(
        [[example.features.get(name, 0.0) for name in names] for example in examples],
        dtype=np.float64,
    )
    y = np.array([example.label for example in examples], dtype=np.bool_)
    return x, y


def batch_fit(x: FloatArray, y: npt.NDArray[np.bool_]) -> Any:
    """scikit-learn ``StandardScaler`` then ``LogisticRegression(C=1)``, fit on ``x, y``."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    pipeline.fit(x, y)
    return pipeline


def batch_scores(pipeline: Any, x: FloatArray) -> list[float]:
    """P(positive) for each row of ``x``."""
    return [float(p) for p in pipeline.predict_proba(x)[:, 1]]


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Measured:
    """AUC and log loss of one set of scores."""

    auc: float
    log_loss: float

    @classmethod
    def of(cls, labels: Sequence[bool], scores: Sequence[float]) -> Measured:
        return cls(roc_auc(labels, scores), log_loss(labels, scores))


@dataclass(frozen=True)
class Checkpoint:
    """Measured after ``n`` labelled examples: over all ``n``, and over the last ``window``."""

    n: int
    positives: int
    window: int
    progressive: Measured
    """Trainer's progressive scores, examples 1..n."""
    batch: Measured
    """Batch fit on 1..n, scored on 1..n (in sample)."""
    progressive_window: Measured
    served_window: Measured
    batch_window: Measured
    """The same in-sample batch scores, on the window only."""
    prior_window: Measured
    intent_auc_window: float
    rolling_auc: float
    """The rolling AUC the worker exports (its ``Measured``, last 2,000 by default)."""


@dataclass(frozen=True)
class Tail:
    """Out-of-sample quality on the ``n`` examples after the last checkpoint."""

    n: int
    positives: int
    online_frozen: Measured
    online_served: Measured
    online_progressive: Measured
    batch: Measured
    """Batch fit on the examples before the tail (the ones the frozen model learned)."""
    batch_hindsight: Measured
    """Batch fit on every example, tail included (in sample on the tail)."""
    prior: Measured
    intent_auc: float


@dataclass(frozen=True)
class Evaluation:
    """Everything the report shows."""

    checkpoints: tuple[Checkpoint, ...]
    tail: Tail | None
    model: dict[str, Any]
    stream: dict[str, Any]
    seconds: float

    @property
    def gap(self) -> float:
        """The bar: batch minus online-frozen AUC on the held-out tail (NaN without a tail)."""
        if self.tail is None:
            return math.nan
        return self.tail.batch.auc - self.tail.online_frozen.auc

    @property
    def bar_met(self) -> bool:
        return self.gap <= BAR


def evaluate(
    stream: Stream,
    config: ModelConfig,
    *,
    checkpoints: Sequence[int] = CHECKPOINTS,
    window: int = WINDOW,
    drop: frozenset[str] = frozenset(),
) -> Evaluation:
    """Online (progressive, served) and batch (hindsight) at each checkpoint, then the tail."""
    started = time.perf_counter()
    examples = stream.examples
    checkpoints = [n for n in checkpoints if n <= len(examples)]
    if not checkpoints:
        raise ValueError(f"only {len(examples)} examples: fewer than the first checkpoint")
    last = checkpoints[-1]
    labels = [e.label for e in examples]
    online = run_online(stream, config, checkpoints=checkpoints, freeze_after=last, drop=drop)
    prior = [config.prior.probability(e.features) for e in examples]
    intents = list(stream.intents)
    x, y = design_matrix(examples, drop)
    rows: list[Checkpoint] = []
    fitted: Any = None
    for n in checkpoints:
        fitted = batch_fit(x[:n], y[:n])
        batch = batch_scores(fitted, x[:n])
        w = slice(max(0, n - window), n)
        rows.append(
            Checkpoint(
                n=n,
                positives=sum(labels[:n]),
                window=w.stop - w.start,
                progressive=Measured.of(labels[:n], online.progressive[:n]),
                batch=Measured.of(labels[:n], batch),
                progressive_window=Measured.of(labels[w], online.progressive[w]),
                served_window=Measured.of(labels[w], online.served[w]),
                batch_window=Measured.of(labels[w], batch[w]),
                prior_window=Measured.of(labels[w], prior[w]),
                intent_auc_window=roc_auc(labels[w], intents[w]),
                rolling_auc=online.rolling[n]["roc_auc"],
            )
        )
    tail = None
    if len(examples) > last:
        rest = labels[last:]
        hindsight = batch_fit(x, y)
        tail = Tail(
            n=len(rest),
            positives=sum(rest),
            online_frozen=Measured.of(rest, online.frozen),
            online_served=Measured.of(rest, online.served[last:]),
            online_progressive=Measured.of(rest, online.progressive[last:]),
            batch=Measured.of(rest, batch_scores(fitted, x[last:])),
            batch_hindsight=Measured.of(rest, batch_scores(hindsight, x[last:])),
            prior=Measured.of(rest, prior[last:]),
            intent_auc=roc_auc(rest, intents[last:]),
        )
    model = {
        "name": config.name,
        "optimizer": config.optimizer,
        "lr": config.lr,
        "intercept_lr": config.intercept_lr,
        "l2": config.l2,
        "l1": config.l1,
        "dropped_features": sorted(drop),
    }
    summary = {
        "events": stream.events,
        "examples": len(examples),
        "positives": sum(labels),
        "other_examples": stream.other_examples,
    }
    return Evaluation(tuple(rows), tail, model, summary, time.perf_counter() - started)


# --------------------------------------------------------------------------- report


_ORDERS = {
    "arrival": "training-topic order",
    "snapshot": "snapshot order (a what-if: each sent at its horizon end)",
}


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _q(quality: Measured) -> str:
    return f"{_f(quality.auc)} | {_f(quality.log_loss, 4)}"


def markdown(
    evaluation: Evaluation,
    command: str,
    simulation: Mapping[str, Any],
    ablation: Evaluation | None = None,
) -> str:
    """The report: the stream, the checkpoint tables, the held-out tail, the bar."""
    stream, model = evaluation.stream, evaluation.model
    first = evaluation.checkpoints[0]
    share = stream["positives"] / stream["examples"]
    lines = [
        f"# Online vs batch, offline: the {model['name']} model",
        "",
        f"Command: `{command}`. Written by "
        "[`benchmarks/models_offline.py`](../models_offline.py); read "
        "[docs/models.md](../../docs/models.md) for what each column means.",
        "",
        f"Stream: simulator seed {simulation['seed']}, {simulation['customers']:,} customers "
        f"over {simulation['days']} days, {stream['events']:,} events run through the pure core "
        f"({simulation['partitions']} partitions, allowed lateness "
        f"{simulation['lateness_seconds']:.0f} s), giving {stream['examples']:,} labelled "
        f"{model['name']} examples in {_ORDERS[simulation.get('learn_order', 'arrival')]}, "
        f"{stream['positives']:,} positive "
        f"({share:.1%}).",
        "",
        f"Online: River `StandardScaler | LogisticRegression`, optimizer `{model['optimizer']}`, "
        f"lr {model['lr']}, intercept lr {model['intercept_lr']}, l2 {model['l2']}"
        + (f", without {', '.join(model['dropped_features'])}" if model["dropped_features"] else "")
        + ". Batch: scikit-learn `StandardScaler` + `LogisticRegression(C=1)`, fit in hindsight "
        "on examples 1..*n* and scored on them (in sample).",
        "",
        f"ROC AUC (window: the last {first.window:,} examples before *n*):",
        "",
        "| *n* | positives | online progressive 1..*n* | batch 1..*n* "
        "| online progressive, window | online served, window | batch, window "
        "| worker's rolling AUC | prior, window | latent intent, window |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in evaluation.checkpoints:
        lines.append(
            f"| {row.n:,} | {row.positives:,} | {_f(row.progressive.auc)} | {_f(row.batch.auc)} "
            f"| {_f(row.progressive_window.auc)} | {_f(row.served_window.auc)} "
            f"| {_f(row.batch_window.auc)} | {_f(row.rolling_auc)} "
            f"| {_f(row.prior_window.auc)} | {_f(row.intent_auc_window)} |"
        )
    lines += [
        "",
        "Log loss:",
        "",
        "| *n* | online progressive 1..*n* | batch 1..*n* | online progressive, window "
        "| online served, window | batch, window | prior, window |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in evaluation.checkpoints:
        lines.append(
            f"| {row.n:,} | {_f(row.progressive.log_loss, 4)} | {_f(row.batch.log_loss, 4)} "
            f"| {_f(row.progressive_window.log_loss, 4)} | {_f(row.served_window.log_loss, 4)} "
            f"| {_f(row.batch_window.log_loss, 4)} | {_f(row.prior_window.log_loss, 4)} |"
        )
    tail, last = evaluation.tail, evaluation.checkpoints[-1]
    if tail is not None:
        lines += [
            "",
            f"Held out: the {tail.n:,} examples after the first {last.n:,} "
            f"({tail.positives:,} positive).",
            "",
            "| scored by | AUC | log loss |",
            "|---|---:|---:|",
            f"| online, frozen after {last.n:,} (out of sample) | {_q(tail.online_frozen)} |",
            f"| batch, fit on the first {last.n:,} (out of sample) | {_q(tail.batch)} |",
            f"| online served, still learning (out of sample) | {_q(tail.online_served)} |",
            "| online progressive, still learning (out of sample, arrival order) "
            f"| {_q(tail.online_progressive)} |",
            "| batch, fit in hindsight on every example (in sample) "
            f"| {_q(tail.batch_hindsight)} |",
            f"| cold-start prior | {_q(tail.prior)} |",
            f"| customer's latent intent (reference) | {_f(tail.intent_auc)} | |",
            "",
            f"**Bar** (issue 4, on the held-out tail): the online model after {last.n:,} "
            f"examples within {BAR} AUC of the batch model fit on the same {last.n:,}: "
            f"{_f(tail.online_frozen.auc)} vs {_f(tail.batch.auc)}, gap {evaluation.gap:+.3f}: "
            f"**{'met' if evaluation.bar_met else 'not met'}**.",
        ]
    if ablation is not None and ablation.tail is not None:
        a, at = ablation.checkpoints[-1], ablation.tail
        dropped = ", ".join(f"`{name}`" for name in ablation.model["dropped_features"])
        lines += [
            "",
            f"Ablation, same stream and settings without {dropped}: online progressive AUC "
            f"1..{a.n:,} {_f(a.progressive.auc)} (batch {_f(a.batch.auc)}); served, window "
            f"{_f(a.served_window.auc)} (batch {_f(a.batch_window.auc)}); held-out tail: "
            f"frozen {_f(at.online_frozen.auc)}, batch {_f(at.batch.auc)}, served "
            f"{_f(at.online_served.auc)}.",
        ]
    lines.append("")
    return "\n".join(lines)


def as_json(
    evaluation: Evaluation, simulation: Mapping[str, Any], ablation: Evaluation | None = None
) -> bytes:
    """The same numbers, machine-readable (NaN as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    def document(found: Evaluation) -> dict[str, Any]:
        return {
            "model": found.model,
            "stream": found.stream,
            "checkpoints": [dataclasses.asdict(row) for row in found.checkpoints],
            "tail": None if found.tail is None else dataclasses.asdict(found.tail),
            "bar": BAR,
            "gap": found.gap,
            "bar_met": found.bar_met,
            "seconds": found.seconds,
        }

    out = {
        "simulation": dict(simulation),
        "python": platform.python_version(),
        **document(evaluation),
        "ablation": None if ablation is None else document(ablation),
    }
    return orjson.dumps(clean(out), option=orjson.OPT_INDENT_2)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.models_offline",
        description="Offline evaluation of the online purchase model against a batch baseline.",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--lateness-seconds", type=float, default=300.0)
    parser.add_argument("--model", choices=(PURCHASE, "engagement"), default=PURCHASE)
    parser.add_argument(
        "--checkpoints", default=",".join(str(n) for n in CHECKPOINTS), help="comma-separated"
    )
    parser.add_argument("--tail", type=int, default=TAIL, help="held-out examples after the last")
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--optimizer", choices=("sgd", "adagrad", "adam"), default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--intercept-lr", type=float, default=None)
    parser.add_argument("--l2", type=float, default=None)
    parser.add_argument(
        "--ablate",
        default="weekday_sin,weekday_cos",
        help="features to drop in a second run, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--learn-order",
        choices=("arrival", "snapshot"),
        default="arrival",
        help="arrival: as the training topic holds them; snapshot: a what-if, each example "
        "sent at its horizon end",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1,500 customers, 7 days, checkpoints 1k to 2.5k"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where models-offline.* go")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(args_in)
    checkpoints = tuple(int(n) for n in args.checkpoints.split(","))
    if args.quick:
        args.customers, args.days, args.tail, args.window = 1_500, 7, 1_000, 1_000
        checkpoints = (1_000, 2_500)
    base = PURCHASE_MODEL if args.model == PURCHASE else ENGAGEMENT_MODEL
    overrides = {
        name: value
        for name, value in (
            ("optimizer", args.optimizer),
            ("lr", args.lr),
            ("intercept_lr", args.intercept_lr),
            ("l2", args.l2),
        )
        if value is not None
    }
    config = dataclasses.replace(base, **overrides)
    simulation = SimulationConfig(
        seed=args.seed, customers=args.customers, duration=timedelta(days=args.days)
    )
    started = time.perf_counter()
    stream = labelled_stream(
        simulation,
        model=args.model,
        partitions=args.partitions,
        lateness=timedelta(seconds=args.lateness_seconds),
        limit=max(checkpoints) + args.tail,
    )
    print(
        f"stream: {stream.events:,} events, {len(stream.examples):,} {args.model} examples "
        f"in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    if args.learn_order == "snapshot":
        stream = in_snapshot_order(stream, config.horizon)
    evaluation = evaluate(stream, config, checkpoints=checkpoints, window=args.window)
    drop = frozenset(name for name in args.ablate.split(",") if name)
    ablation = (
        evaluate(stream, config, checkpoints=checkpoints, window=args.window, drop=drop)
        if drop
        else None
    )
    described = {
        "seed": args.seed,
        "customers": args.customers,
        "days": args.days,
        "partitions": args.partitions,
        "lateness_seconds": args.lateness_seconds,
        "learn_order": args.learn_order,
    }
    command = " ".join(["python -m benchmarks.models_offline", *args_in])
    report = markdown(evaluation, command, described, ablation)
    print(report)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = "models-offline"
        if args.model != PURCHASE:
            stem += f"-{args.model}"
        if args.learn_order != "arrival":
            stem += f"-{args.learn_order}-order"
        (args.out / f"{stem}.md").write_text(report)
        (args.out / f"{stem}.json").write_bytes(as_json(evaluation, described, ablation) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
