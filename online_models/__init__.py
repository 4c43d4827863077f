"""Nudge's online learning: features, River pipelines, delayed labels, quality; no I/O.

* :mod:`online_models.features`: the profile as a feature dict, for learning and scoring
  (``from online_models.features import features``; the function is not re-exported
  here, where its name would hide the module).
* :mod:`online_models.propensity`: :class:`PropensityModel`, a River pipeline behind
  ``score`` / ``learn`` / ``snapshot`` / ``restore``, with a prior until it is warm.
* :mod:`online_models.prior`: the documented cold-start priors.
* :mod:`online_models.labels`: the per-customer buffer of snapshots waiting for a label.
* :mod:`online_models.quality`: rolling AUC, log loss, calibration error and drift.
* :mod:`online_models.trainer`: predict, then learn, every labelled example; snapshots.
"""

from online_models._snapshot import SnapshotError
from online_models.features import BOUNDS, FEATURE_NAMES
from online_models.labels import (
    ENGAGEMENT,
    PURCHASE,
    LabelledExample,
    Pending,
    PendingExample,
    erased,
    maybe_snapshot,
    resolve,
)
from online_models.prior import ENGAGEMENT_PRIOR, PURCHASE_PRIOR, Prior, PriorTerm
from online_models.propensity import (
    ENGAGEMENT_MODEL,
    PRIOR_VERSION,
    PURCHASE_MODEL,
    ModelConfig,
    PropensityModel,
    Score,
)
from online_models.quality import DriftSignal, Quality, QualityConfig
from online_models.trainer import SnapshotPolicy, Trainer, TrainOutcome, UnknownModelError

__all__ = [
    "BOUNDS",
    "ENGAGEMENT",
    "ENGAGEMENT_MODEL",
    "ENGAGEMENT_PRIOR",
    "FEATURE_NAMES",
    "PRIOR_VERSION",
    "PURCHASE",
    "PURCHASE_MODEL",
    "PURCHASE_PRIOR",
    "DriftSignal",
    "LabelledExample",
    "ModelConfig",
    "Pending",
    "PendingExample",
    "Prior",
    "PriorTerm",
    "PropensityModel",
    "Quality",
    "QualityConfig",
    "Score",
    "SnapshotError",
    "SnapshotPolicy",
    "TrainOutcome",
    "Trainer",
    "UnknownModelError",
    "erased",
    "maybe_snapshot",
    "resolve",
]
