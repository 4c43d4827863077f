"""The trainer: every labelled example, predict first, then learn, for each model.

One trainer consumes the single-partition training topic, so every model sees
every example once whatever the number of workers. For each
:class:`~online_models.labels.LabelledExample` it scores the features with
the model the example names, feeds ``(label, score)`` to that model's
:class:`~online_models.quality.Quality` (progressive validation: the score
is out of sample), and only then learns the example.

The shell publishes snapshots when :meth:`Trainer.snapshot_due` says so:
:meth:`Trainer.snapshot` is the whole trainer (for the trainer's own
restart) and :meth:`Trainer.model_snapshots` splits it into one blob per
model, which workers restore with
:meth:`online_models.propensity.PropensityModel.restore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Self

from online_models._snapshot import SnapshotError, dump, load
from online_models.labels import LabelledExample
from online_models.propensity import (
    ENGAGEMENT_MODEL,
    PURCHASE_MODEL,
    ModelConfig,
    PropensityModel,
)
from online_models.quality import DriftSignal

__all__ = ["SnapshotPolicy", "TrainOutcome", "Trainer", "UnknownModelError"]

_HEADER: Final = b"NUDGE-TRAINER\x00"
_FORMAT: Final = 1


class UnknownModelError(ValueError):
    """The example names a model the trainer does not have."""


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """Publish after ``every_examples`` examples, or ``every_seconds`` if any were learned."""

    every_examples: int = 1000
    every_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.every_examples < 1 or not self.every_seconds > 0.0:
            raise ValueError("every_examples must be >= 1 and every_seconds > 0")


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """What learning one example did.

    ``p`` is the model's score before it learned the example, ``drift``
    whether the model's drift detector fired on it (``signal`` says more).
    """

    model: str
    p: float
    drift: bool
    signal: DriftSignal | None = None


class Trainer:
    """The models the trainer owns, by name.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> at = datetime(2024, 5, 1, tzinfo=UTC)
    >>> trainer = Trainer.create()
    >>> example = LabelledExample(
    ...     model="purchase", customer_id="c1", features={"cart_lines": 2.0}, label=True,
    ...     taken_at=at, labelled_at=at,
    ... )
    >>> trainer.learn_one(example)
    TrainOutcome(model='purchase', p=0.5, drift=False, signal=None)
    >>> Trainer.snapshot_due(1, 61.0, SnapshotPolicy(every_seconds=60.0))
    True
    >>> blobs = Trainer.model_snapshots(trainer.snapshot())
    >>> sorted(blobs), PropensityModel.restore(blobs["purchase"]).examples
    (['engagement', 'purchase'], 1)

    """

    def __init__(self, models: Iterable[PropensityModel]) -> None:
        by_name: dict[str, PropensityModel] = {}
        for model in models:
            if model.name in by_name:
                raise ValueError(f"two models are named {model.name!r}")
            by_name[model.name] = model
        self._models = by_name

    @classmethod
    def create(cls, configs: Iterable[ModelConfig] = (PURCHASE_MODEL, ENGAGEMENT_MODEL)) -> Self:
        """Build a trainer with a fresh model per config (by default purchase and engagement)."""
        return cls(PropensityModel(config) for config in configs)

    @property
    def models(self) -> Mapping[str, PropensityModel]:
        """The models by name (read-only view)."""
        return MappingProxyType(self._models)

    def learn_one(self, example: LabelledExample) -> TrainOutcome:
        """Score, update quality, then learn one example (progressive validation).

        Raises
        ------
        UnknownModelError
            If no model has the example's name.

        """
        model = self._models.get(example.model)
        if model is None:
            raise UnknownModelError(f"no model named {example.model!r}")
        p = model.score(example.features)
        signal = model.quality.update(example.label, p)
        model.learn(example.features, example.label)
        return TrainOutcome(model=model.name, p=p, drift=signal is not None, signal=signal)

    @staticmethod
    def snapshot_due(examples_since: int, seconds_since: float, config: SnapshotPolicy) -> bool:
        """Whether to publish: enough examples, or enough time with at least one example."""
        if examples_since <= 0:
            return False
        return examples_since >= config.every_examples or seconds_since >= config.every_seconds

    def snapshot(self) -> bytes:
        """Snapshot every model (each counts a new version) into one blob."""
        blobs = {name: model.snapshot() for name, model in sorted(self._models.items())}
        return dump(_HEADER, {"format": _FORMAT, "models": blobs})

    @staticmethod
    def model_snapshots(blob: bytes) -> dict[str, bytes]:
        """Split a trainer snapshot into each model's snapshot, by name."""
        models = load(_HEADER, blob, _FORMAT).get("models")
        if not isinstance(models, dict) or not all(
            isinstance(name, str) and isinstance(raw, bytes) for name, raw in models.items()
        ):
            raise SnapshotError("a trainer snapshot must map model names to bytes")
        return dict(models)

    @classmethod
    def restore(cls, blob: bytes) -> Self:
        """Rebuild a trainer from :meth:`snapshot`'s bytes."""
        return cls(PropensityModel.restore(raw) for raw in cls.model_snapshots(blob).values())
