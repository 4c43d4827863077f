"""The offline evaluation's pure helpers: metrics, the labelled stream, the online runner."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import numpy as np
import pytest
from sklearn import metrics  # type: ignore[import-untyped]

from benchmarks.models_micro import time_per_call
from benchmarks.models_offline import (
    Stream,
    design_matrix,
    in_snapshot_order,
    labelled_stream,
    log_loss,
    roc_auc,
    run_online,
)
from online_models.features import FEATURE_NAMES
from online_models.propensity import PURCHASE_MODEL
from streams.simulator import SimulationConfig

pytestmark = pytest.mark.unit

TINY = SimulationConfig(seed=5, customers=60, duration=timedelta(days=3))


@pytest.fixture(scope="module")
def stream() -> Stream:
    return labelled_stream(TINY)


def test_auc_of_a_perfect_a_reversed_and_a_constant_ranking() -> None:
    labels = [False, False, True, True]
    assert roc_auc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_auc_counts_ties_half_by_hand() -> None:
    # Pairs (positive, negative): (0.4 vs 0.1) win, (0.4 vs 0.4) tie, (0.7 vs both) win.
    assert roc_auc([False, True, False, True], [0.1, 0.4, 0.4, 0.7]) == pytest.approx(0.875)


def test_auc_is_undefined_for_one_class_and_checks_lengths() -> None:
    assert math.isnan(roc_auc([True, True], [0.2, 0.3]))
    with pytest.raises(ValueError, match="length"):
        roc_auc([True], [0.1, 0.2])


def test_log_loss_by_hand_and_clamped() -> None:
    assert log_loss([True, False], [0.8, 0.2]) == pytest.approx(-math.log(0.8))
    assert log_loss([True], [0.0]) == pytest.approx(-math.log(1e-15))
    assert math.isnan(log_loss([], []))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_scikit_learn(seed: int) -> None:
    rng = random.Random(seed)
    labels = [rng.random() < 0.2 for _ in range(500)]
    # Rounded scores make ties, which both must count the same way.
    scores = [round(min(max(rng.gauss(0.3 + 0.3 * y, 0.2), 0.0), 1.0), 2) for y in labels]
    assert roc_auc(labels, scores) == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert log_loss(labels, scores) == pytest.approx(
        metrics.log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15), labels=[False, True])
    )


def test_the_stream_is_deterministic(stream: Stream) -> None:
    again = labelled_stream(TINY)
    assert again.examples == stream.examples
    assert again.arrivals == stream.arrivals
    assert again.intents == stream.intents
    assert stream.examples, "the tiny shop should label something"


def test_the_stream_holds_labels_the_core_settled(stream: Stream) -> None:
    horizon = PURCHASE_MODEL.horizon
    assert all(e.model == "purchase" for e in stream.examples)
    for example, arrival in zip(stream.examples, stream.arrivals, strict=True):
        assert example.taken_at <= example.labelled_at <= arrival
        if example.label:
            assert example.labelled_at < example.taken_at + horizon
        else:
            assert example.labelled_at == example.taken_at + horizon
    # Each snapshot is learned once, and the topic's order follows event time.
    assert len({(e.customer_id, e.taken_at) for e in stream.examples}) == len(stream.examples)
    assert list(stream.arrivals) == sorted(stream.arrivals)
    assert all(0.0 <= intent <= 1.0 for intent in stream.intents)


def test_a_limit_keeps_the_first_examples(stream: Stream) -> None:
    limit = len(stream.examples) // 2
    assert labelled_stream(TINY, limit=limit).examples == stream.examples[:limit]


def test_snapshot_order_sorts_by_time_taken_and_arrives_at_the_horizon(stream: Stream) -> None:
    horizon = timedelta(hours=24)
    reordered = in_snapshot_order(stream, horizon)
    taken = [e.taken_at for e in reordered.examples]
    assert taken == sorted(taken)
    assert sorted(reordered.examples, key=lambda e: (e.customer_id, e.taken_at)) == sorted(
        stream.examples, key=lambda e: (e.customer_id, e.taken_at)
    )
    assert all(
        a == e.taken_at + horizon
        for a, e in zip(reordered.arrivals, reordered.examples, strict=True)
    )


def test_the_online_runner_scores_every_example_out_of_sample(stream: Stream) -> None:
    n = len(stream.examples)
    freeze = n // 2
    online = run_online(stream, PURCHASE_MODEL, checkpoints=(freeze,), freeze_after=freeze)
    assert len(online.progressive) == len(online.served) == n
    assert len(online.frozen) == n - freeze
    # Nothing is learned before the first label arrives: an untrained model says 0.5.
    assert online.progressive[0] == 0.5
    assert online.served[0] == 0.5
    assert all(0.0 <= p <= 1.0 for p in (*online.progressive, *online.served, *online.frozen))
    assert online.rolling[freeze]["examples"] == freeze
    assert run_online(stream, PURCHASE_MODEL).progressive == online.progressive


def test_an_ablation_drops_the_features_from_both_sides(stream: Stream) -> None:
    drop = frozenset({"weekday_sin", "weekday_cos"})
    x, y = design_matrix(stream.examples[:10], drop)
    assert x.shape == (len(y), len(FEATURE_NAMES) - 2)
    assert run_online(stream, PURCHASE_MODEL, drop=drop).progressive[0] == 0.5


def test_time_per_call_reports_per_call_statistics() -> None:
    calls: list[int] = []
    median, low, high = time_per_call(calls.append, number=10, repeat=3)
    assert calls == list(range(10)) * 3
    assert 0.0 <= low <= median <= high
    with pytest.raises(ValueError, match="at least 1"):
        time_per_call(calls.append, number=0, repeat=1)
