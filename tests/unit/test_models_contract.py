"""River's estimator contract (``river/checks/``), ported to :class:`PropensityModel`.

The checks of ``river.checks.common`` that apply to a wrapped binary
classifier: ``check_learn_one`` (learning leaves ``x`` alone),
``check_predict_one_pure`` (so does scoring, and it changes no state),
``check_pickling`` (here: a snapshot round-trip predicts identically),
``seed_params`` (the same seed gives the same scores),
``check_shuffle_features_no_impact``, ``check_emerging_features``,
``check_disappearing_features``, ``check_radically_disappearing_features``,
and ``check_predict_one_before_any_learn``; plus scores in [0, 1] for any
finite features (hypothesis).
"""

from __future__ import annotations

import copy
import math
import pickle
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.features import BOUNDS, FEATURE_NAMES
from online_models.propensity import (
    PRIOR_VERSION,
    ModelConfig,
    PropensityModel,
    Score,
    SnapshotError,
)

pytestmark = pytest.mark.unit

NAMES = FEATURE_NAMES
CONFIGS = [
    pytest.param(ModelConfig(name="sgd"), id="sgd"),
    pytest.param(ModelConfig(name="adam", optimizer="adam", l2=0.001), id="adam-l2"),
    pytest.param(ModelConfig(name="adagrad", optimizer="adagrad", l1=0.001), id="adagrad-l1"),
    pytest.param(ModelConfig(name="seeded", init_scale=0.1, seed=3), id="random-init"),
]


def dataset(seed: int = 42, n: int = 150) -> Iterator[tuple[dict[str, float], bool]]:
    """Feature dicts shaped like :func:`features`' output, labels from two of them."""
    rng = random.Random(seed)
    for _ in range(n):
        x = {name: rng.uniform(low, high) for name, (low, high) in BOUNDS.items()}
        z = -1.0 + 0.4 * x["session_products"] / 10 + 1.5 * x["checkout_started"]
        yield x, rng.random() < 1 / (1 + math.exp(-z))


@pytest.fixture(params=CONFIGS)
def model(request: pytest.FixtureRequest) -> PropensityModel:
    config: ModelConfig = request.param
    return PropensityModel(config)


def test_learn_does_not_modify_x(model: PropensityModel) -> None:
    for x, y in dataset():
        before = copy.deepcopy(x)
        model.learn(x, y)
        assert x == before
        assert list(x) == list(before)


def test_score_does_not_modify_x_or_the_model(model: PropensityModel) -> None:
    for x, y in dataset(n=50):
        model.learn(x, y)
    for x, _ in dataset(seed=1, n=20):
        before, state = copy.deepcopy(x), pickle.dumps(model)
        model.score(x)
        model.prediction(x)
        assert x == before
        assert pickle.dumps(model) == state


def test_scoring_before_any_learning_works(model: PropensityModel) -> None:
    for x, _ in dataset(n=5):
        p = model.score(x)
        assert 0.0 <= p <= 1.0


def test_a_snapshot_round_trip_predicts_identically(model: PropensityModel) -> None:
    data = list(dataset())
    for x, y in data[:100]:
        model.learn(x, y)
    restored = PropensityModel.restore(model.snapshot())
    assert restored.version == model.version == 1
    assert (restored.examples, restored.positives) == (model.examples, model.positives)
    assert restored.quality.as_dict() == model.quality.as_dict()
    for x, y in data[100:]:
        assert restored.score(x) == model.score(x)
        restored.learn(x, y)
        model.learn(x, y)
    assert restored.quality.as_dict() == model.quality.as_dict()
    again = PropensityModel.restore(restored.snapshot())
    assert again.version == 2
    assert [again.score(x) for x, _ in data] == [model.score(x) for x, _ in data]


def test_the_same_seed_and_examples_give_the_same_scores() -> None:
    config = ModelConfig(name="seeded", init_scale=0.5, seed=7)
    one, two, other = (
        PropensityModel(config),
        PropensityModel(config),
        PropensityModel(ModelConfig(name="seeded", init_scale=0.5, seed=8)),
    )
    scores: list[list[float]] = [[], [], []]
    for x, y in dataset():
        for model, out in zip((one, two, other), scores, strict=True):
            out.append(model.score(x))
            model.learn(x, y)
    assert scores[0] == scores[1]
    assert scores[0] != scores[2]
    assert one.snapshot() == two.snapshot()


def test_the_order_of_features_has_no_impact(model: PropensityModel) -> None:
    shuffled = PropensityModel(model.config)
    rng = random.Random(5)
    for x, y in dataset():
        keys = list(x)
        rng.shuffle(keys)
        x_shuffled = {key: x[key] for key in keys}
        assert model.score(x) == shuffled.score(x_shuffled)
        model.learn(x, y)
        shuffled.learn(x_shuffled, y)


def test_new_features_are_tolerated(model: PropensityModel) -> None:
    rng = random.Random(6)
    for x, y in dataset():
        keys = list(x)
        rng.shuffle(keys)
        model.score({**x, "brand_new_feature": 3.0})
        model.learn({key: x[key] for key in keys[:-3]}, y)  # learn without 3 of them
    assert 0.0 <= model.score({**x, "another_new_one": 1.0}) <= 1.0


def test_missing_features_are_tolerated(model: PropensityModel) -> None:
    rng = random.Random(7)
    for x, y in dataset():
        keys = list(x)
        rng.shuffle(keys)
        assert 0.0 <= model.score({key: x[key] for key in keys[:-3]}) <= 1.0
        model.learn(x, y)
    assert 0.0 <= model.score({}) <= 1.0


def test_nearly_all_features_disappearing_is_tolerated(model: PropensityModel) -> None:
    data = list(dataset())
    for x, y in data[:20]:
        model.score(x)
        model.learn(x, y)
    rng = random.Random(8)
    for x, y in data[10:]:
        kept = rng.choice(list(x))
        assert 0.0 <= model.score({kept: x[kept]}) <= 1.0
        model.learn({kept: x[kept]}, y)


finite = st.floats(allow_nan=False, allow_infinity=False)
feature_dicts = st.dictionaries(st.sampled_from([*NAMES[:12], "new_a", "new_b"]), finite)


@given(
    learned=st.lists(st.tuples(feature_dicts, st.booleans()), max_size=30),
    probes=st.lists(feature_dicts, min_size=1, max_size=5),
)
@settings(max_examples=150, deadline=None)
def test_scores_are_finite_probabilities_for_any_finite_features(
    learned: list[tuple[dict[str, float], bool]], probes: list[dict[str, float]]
) -> None:
    model = PropensityModel(ModelConfig(name="any", min_positives=0))
    for x, y in learned:
        model.learn(x, y)
    for x in probes:
        p = model.score(x)
        assert math.isfinite(p)
        assert 0.0 <= p <= 1.0
        assert 0.0 <= model.prediction(x).probability <= 1.0


def test_non_finite_values_read_as_missing() -> None:
    model = PropensityModel()
    for x, y in dataset(n=50):
        model.learn(x, y)
    x = next(dataset(seed=9, n=1))[0]
    without = {key: value for key, value in x.items() if key != "rfm_r"}
    assert model.score({**x, "rfm_r": math.nan}) == model.score(without)
    assert model.score({**x, "rfm_r": math.inf}) == model.score(without)


# --- the wrapper's own promises ----------------------------------------------------


def test_the_prior_serves_until_min_positives_then_the_model() -> None:
    model = PropensityModel(ModelConfig(name="purchase", min_positives=3))
    x = {"checkout_started": 1.0, "has_cart": 1.0}
    assert model.prediction(x) == Score(model.config.prior.probability(x), PRIOR_VERSION)
    for y in (True, False, True, False):
        model.learn(x, y)
    assert model.prediction(x).model_version == PRIOR_VERSION  # two positives so far
    model.learn(x, True)
    model.snapshot()
    model.snapshot()
    assert model.prediction(x) == Score(model.score(x), "purchase-v2")


def test_counters_count_examples_and_positives() -> None:
    model = PropensityModel()
    labels = [y for _, y in dataset()]
    for x, y in dataset():
        model.learn(x, y)
    assert model.examples == len(labels)
    assert model.positives == sum(labels)


@pytest.mark.parametrize(
    "blob",
    [b"", b"garbage", b"NUDGE-MODEL\x00not a pickle", b"NUDGE-TRAINER\x00" + pickle.dumps({})],
)
def test_restore_refuses_what_is_not_a_model_snapshot(blob: bytes) -> None:
    with pytest.raises(SnapshotError):
        PropensityModel.restore(blob)


def test_restore_refuses_a_truncated_snapshot() -> None:
    blob = PropensityModel().snapshot()
    with pytest.raises(SnapshotError):
        PropensityModel.restore(blob[: len(blob) // 2])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"lr": 0.0}, "lr"),
        ({"l1": 0.1, "l2": 0.1}, "not both"),
        ({"min_positives": -1}, "min_positives"),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**changes)  # type: ignore[arg-type]
