"""Online quality: AUC, log loss and calibration on known streams; drift on a flip."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from online_models.quality import Quality, QualityConfig

pytestmark = pytest.mark.unit


def stream(seed: int, n: int, flip_after: int | None = None) -> list[tuple[bool, float]]:
    """Labels drawn from calibrated probabilities; after ``flip_after`` the labels invert."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = 1.0 / (1.0 + math.exp(-rng.gauss(-1.0, 1.5)))
        y = rng.random() < p
        if flip_after is not None and i >= flip_after:
            y = not y
        out.append((y, p))
    return out


def feed(quality: Quality, pairs: list[tuple[bool, float]]) -> list[int]:
    """Feed the pairs; return the positions where drift was signalled."""
    return [i for i, (y, p) in enumerate(pairs) if quality.update(y, p) is not None]


def test_perfect_predictions_give_auc_one() -> None:
    quality = Quality(QualityConfig(window_size=500))
    rng = random.Random(1)
    for _ in range(2000):
        y = rng.random() < 0.05
        quality.update(y, rng.uniform(0.5, 1.0) if y else rng.uniform(0.0, 0.5))
    assert quality.as_dict()["roc_auc"] == 1.0


def test_random_predictions_give_auc_near_one_half() -> None:
    quality = Quality(QualityConfig(window_size=2000))
    rng = random.Random(2)
    for _ in range(5000):
        quality.update(rng.random() < 0.3, rng.random())
    assert quality.as_dict()["roc_auc"] == pytest.approx(0.5, abs=0.04)


def test_auc_is_exact_at_a_low_base_rate() -> None:
    # Probabilities far below 0.1: a thresholded AUC would see one bucket.
    quality = Quality(QualityConfig(window_size=1000))
    for i in range(1000):
        y = i % 50 == 0
        quality.update(y, 0.02 if y else 0.01)
    assert quality.as_dict()["roc_auc"] == 1.0


def test_log_loss_of_a_coin_is_ln2_and_a_sure_mistake_is_capped() -> None:
    quality = Quality(QualityConfig(window_size=4))
    for y in (True, False, True, False):
        quality.update(y, 0.5)
    assert quality.as_dict()["log_loss"] == pytest.approx(math.log(2))
    sure = Quality()
    sure.update(True, 0.0)
    assert sure.as_dict()["log_loss"] == pytest.approx(-math.log(1e-15))


def test_calibration_error_is_small_when_calibrated_and_large_when_not() -> None:
    calibrated = Quality(QualityConfig(window_size=5000))
    feed(calibrated, stream(3, 5000))
    assert calibrated.as_dict()["calibration_error"] < 0.03
    overconfident = Quality(QualityConfig(window_size=1000))
    for i in range(1000):
        overconfident.update(i % 10 == 0, 0.9)  # says 90%, is right 10% of the time
    assert overconfident.as_dict()["calibration_error"] == pytest.approx(0.8)


def test_rolling_values_cover_the_last_window_only() -> None:
    window = 300
    quality = Quality(QualityConfig(window_size=window, calibration_bins=5))
    pairs = stream(4, 2000)
    feed(quality, pairs)
    last = pairs[-window:]
    expected_loss = sum(-math.log(p if y else 1 - p) for y, p in last) / window
    bins: list[list[tuple[bool, float]]] = [[] for _ in range(5)]
    for y, p in last:
        bins[min(int(p * 5), 4)].append((y, p))
    expected_ece = sum(abs(sum(p for _, p in b) - sum(y for y, _ in b)) for b in bins) / window
    metrics = quality.as_dict()
    assert metrics["window"] == window
    assert metrics["examples"] == 2000
    assert metrics["log_loss"] == pytest.approx(expected_loss, rel=1e-12)
    assert metrics["calibration_error"] == pytest.approx(expected_ece, rel=1e-9, abs=1e-12)


def test_drift_fires_on_a_sudden_flip_of_the_labels_and_not_before() -> None:
    quality = Quality()
    flips_at = 4000
    drifts = feed(quality, stream(5, 6000, flip_after=flips_at))
    assert drifts, "no drift signalled"
    assert drifts[0] >= flips_at, "a false alarm on a stationary stream"
    assert drifts[0] < flips_at + 300, "drift noticed too late"
    metrics = quality.as_dict()
    assert metrics["drifts"] == len(drifts)
    assert metrics["last_drift_at"] == drifts[-1] + 1


def test_a_drift_signal_says_the_loss_went_up() -> None:
    quality = Quality()
    before = None
    for i, (y, p) in enumerate(stream(6, 6000, flip_after=3000)):
        if i == 2999:
            before = quality.as_dict()["drift_loss_mean"]
        signal = quality.update(y, p)
        if signal is not None:
            assert before is not None
            assert signal.examples == i + 1
            assert signal.loss_mean > before
            assert signal.window > 0
            return
    pytest.fail("no drift signalled")


def test_empty_quality_is_all_zeros_and_finite() -> None:
    metrics = Quality().as_dict()
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["roc_auc"] == metrics["log_loss"] == metrics["calibration_error"] == 0.0


@pytest.mark.parametrize("p", [-0.1, 1.1, math.nan, math.inf])
def test_a_non_probability_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        Quality().update(True, p)


def test_quality_pickles_and_carries_on_identically() -> None:
    quality = Quality(QualityConfig(window_size=200))
    pairs = stream(7, 1500, flip_after=1000)
    feed(quality, pairs[:700])
    copy = pickle.loads(pickle.dumps(quality))  # noqa: S301 - our own bytes
    assert copy.as_dict() == quality.as_dict()
    assert feed(copy, pairs[700:]) == feed(quality, pairs[700:])
    assert copy.as_dict() == quality.as_dict()


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="window_size"):
        QualityConfig(window_size=0)
    with pytest.raises(ValueError, match="adwin_delta"):
        QualityConfig(adwin_delta=1.0)
