"""The core's shortcuts build the very objects the slower code built.

``FrozenModel.updated`` stands in for ``model_copy(update=...)`` and
``FrozenModel.from_valid`` (behind cheap checks) for validation; each must
give an equal object with the same fields set and the same bytes, and the
checks must send anything unusual through validation as before. The model
input cleaning (``propensity._clean``) must give the same dict as before.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from online_models.features import FEATURE_NAMES, features
from online_models.labels import LabelledExample, PendingExample, maybe_snapshot, resolve
from online_models.propensity import _clean
from schemas.clickstream import PageView, ProductView
from streams.core.frozen import FrozenModel
from streams.core.profile import Profile, StoredScore, record_score
from streams.core.reducer import ProfileConfig, apply

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)


def visitor() -> Profile:
    view = PageView(event_id="e1", customer_id="c1", occurred_at=T0, url="https://shop.example/")
    profile = apply(None, view, ProfileConfig()).profile
    assert isinstance(profile, Profile)
    return profile


def same(a: FrozenModel, b: FrozenModel) -> None:
    assert type(a) is type(b)
    assert a == b
    assert a.__dict__ == b.__dict__
    assert list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert a.to_bytes() == b.to_bytes()


def test_updated_is_model_copy() -> None:
    view = ProductView(
        event_id="e1",
        customer_id="c1",
        occurred_at=T0,
        product_id="p1",
        price=Decimal("9.99"),
        currency="EUR",
    )
    profile = apply(None, view, ProfileConfig()).profile
    update = {"events_applied": 7, "recent_event_ids": ("a", "b")}
    same(profile.updated(update), profile.model_copy(update=update))
    same(profile.updated({}), profile.model_copy())


def test_from_valid_needs_every_field() -> None:
    with pytest.raises(TypeError, match="exactly the fields"):
        StoredScore.from_valid(probability=0.5, model_version="prior")


@pytest.mark.parametrize(
    ("probability", "at"),
    [
        (0.25, T0),  # the fast path
        (1, T0),  # an int: validation makes it a float
        (0.25, T0.astimezone(timezone(timedelta(hours=2)))),  # converted to UTC
        (0.25, T0.replace(tzinfo=ZoneInfo("UTC"))),  # another UTC object
    ],
)
def test_a_stored_score_is_the_validated_one(probability: float, at: datetime) -> None:
    profile = visitor()
    stored = record_score(profile, "purchase", probability, "prior", at).scores["purchase"]
    same(stored, StoredScore(probability=probability, model_version="prior", scored_at=at))


def test_a_score_out_of_range_is_still_rejected() -> None:
    profile = visitor()
    with pytest.raises(ValueError, match="less than or equal to 1"):
        record_score(profile, "purchase", 1.5, "prior", T0)


@pytest.mark.parametrize(
    ("x", "at"),
    [
        ({"cart_lines": 1.0, "rfm_r": 3.0}, T0),  # the fast path
        ({"cart_lines": 1, "rfm_r": 3.0}, T0),  # an int feature: validated to a float
        ({"cart_lines": 1.0}, T0.astimezone(timezone(timedelta(hours=-5)))),
    ],
)
def test_snapshots_and_labels_are_the_validated_ones(x: dict[str, float], at: datetime) -> None:
    pending = maybe_snapshot(None, "c1", "purchase", x, at, horizon=timedelta(hours=24))
    (example,) = pending.examples
    expected = PendingExample(
        model="purchase",
        customer_id="c1",
        taken_at=at,
        features=dict(x),
        horizon_ends_at=at + timedelta(hours=24),
    )
    same(example, expected)
    _, (labelled,) = resolve(pending, None, at + timedelta(days=2))
    same(
        labelled,
        LabelledExample(
            model="purchase",
            customer_id="c1",
            features=dict(x),
            label=False,
            taken_at=at,
            labelled_at=at + timedelta(hours=24),
        ),
    )
    assert labelled.features is not example.features


def test_event_flags_are_one_hot_in_feature_order() -> None:
    view = PageView(event_id="e1", customer_id="c1", occurred_at=T0, url="https://shop.example/")
    profile = visitor()
    for event in (view, None):
        x = features(profile, event, T0, ProfileConfig())
        assert tuple(x) == FEATURE_NAMES
        flags = {name: value for name, value in x.items() if name.startswith("event_")}
        on = [name for name, value in flags.items() if value == 1.0]
        assert on == (["event_page_view"] if event else ["event_none"])
        x["event_page_view"] = 5.0  # the caller's own dict: the cache is untouched
    assert features(profile, view, T0, ProfileConfig())["event_page_view"] == 1.0


def _clean_as_written_before(x: dict[str, float]) -> dict[str, float]:
    return {
        key: min(max(float(value), -1e6), 1e6)
        for key, value in sorted(x.items())
        if math.isfinite(value)
    }


def test_model_input_cleaning_is_unchanged() -> None:
    rng = random.Random(1)
    special = [0.0, -0.0, 1e6, -1e6, 1e7, -1e7, math.inf, -math.inf, math.nan, 3, True, 1e-300]
    for _ in range(2_000):
        x = {
            f"f{rng.randrange(60)}": rng.choice([*special, rng.uniform(-2e6, 2e6)])
            for _ in range(rng.randrange(40))
        }
        cleaned, before = _clean(x), _clean_as_written_before(x)
        assert list(cleaned.items()) == list(before.items())
        assert [type(v) for v in cleaned.values()] == [type(v) for v in before.values()]
        assert [math.copysign(1.0, v) for v in cleaned.values()] == [
            math.copysign(1.0, v) for v in before.values()
        ]
