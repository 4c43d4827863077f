"""The one place River objects are built, typed by what Nudge calls on them.

River 0.26 ships ``py.typed`` but leaves much of its API unannotated, which
strict mypy rejects in a typed context. The constructors here return River
objects behind small protocols, so the rest of the package is checked
against exactly the methods it uses.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeAlias, cast

from river import drift, linear_model, metrics, optim, preprocessing

__all__ = [
    "BinaryMetric",
    "Classifier",
    "DriftDetector",
    "OptimizerName",
    "adwin",
    "logistic_pipeline",
    "rolling_roc_auc",
]

OptimizerName: TypeAlias = Literal["sgd", "adagrad", "adam"]


class Classifier(Protocol):
    """A River binary classifier: ``learn_one`` and ``predict_proba_one``."""

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        """Learn one example."""

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        """Return ``{False: 1 - p, True: p}``."""
        ...


class BinaryMetric(Protocol):
    """A River metric fed a label and a probability."""

    def update(self, y_true: bool, y_pred: float) -> object:
        """Take one prediction."""

    def get(self) -> float:
        """Return the current value."""
        ...


class DriftDetector(Protocol):
    """River's ADWIN, as far as Nudge uses it."""

    def update(self, x: float) -> object:
        """Take one value."""

    @property
    def drift_detected(self) -> bool:
        """Whether the last value completed a detected change."""
        ...

    @property
    def estimation(self) -> float:
        """The mean of the current window."""
        ...

    @property
    def width(self) -> int:
        """The length of the current window."""
        ...


def _optimizer(name: OptimizerName, lr: float) -> object:
    river_optim = cast(Any, optim)
    match name:
        case "sgd":
            return river_optim.SGD(lr)
        case "adagrad":
            return river_optim.AdaGrad(lr)
        case "adam":
            return river_optim.Adam(lr)


def logistic_pipeline(
    *,
    optimizer: OptimizerName,
    lr: float,
    l2: float,
    l1: float,
    intercept_lr: float,
    init_scale: float,
    seed: int,
) -> Classifier:
    """``StandardScaler() | LogisticRegression(...)``, weights drawn from ``seed`` if scaled."""
    river_optim = cast(Any, optim)
    initializer = (
        river_optim.initializers.Normal(mu=0.0, sigma=init_scale, seed=seed)
        if init_scale > 0.0
        else river_optim.initializers.Zeros()
    )
    regression = cast(Any, linear_model).LogisticRegression(
        optimizer=_optimizer(optimizer, lr),
        l2=l2,
        l1=l1,
        intercept_lr=intercept_lr,
        initializer=initializer,
    )
    return cast(Classifier, cast(Any, preprocessing).StandardScaler() | regression)


def rolling_roc_auc(window_size: int) -> BinaryMetric:
    """River's exact ROC AUC over the last ``window_size`` predictions."""
    return cast(BinaryMetric, cast(Any, metrics).RollingROCAUC(window_size=window_size))


def adwin(delta: float) -> DriftDetector:
    """River's ADWIN change detector with confidence ``delta``."""
    return cast(DriftDetector, cast(Any, drift).ADWIN(delta=delta))
