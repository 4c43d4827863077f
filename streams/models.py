"""Models in the worker: score with the latest snapshot, and one trainer that learns.

Every worker scores with the snapshots in a global table (each worker reads
all of it), replacing its model when a new snapshot arrives. One trainer
learns: the training topic has a single partition, so whichever worker owns
it sees every labelled example once; it publishes a snapshot of every model
(with its quality) every ``snapshot_every_examples`` examples or
``snapshot_every_seconds`` seconds, and a restarted trainer resumes from the
latest one instead of from zero.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from online_models.labels import LabelledExample
from online_models.propensity import (
    ENGAGEMENT_MODEL,
    PURCHASE_MODEL,
    ModelConfig,
    PropensityModel,
    Score,
)
from online_models.trainer import SnapshotPolicy, Trainer
from streams.core.engine import Models
from streams.metrics import Metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

TRAINER_KEY = "trainer"
"""Key of the whole trainer's snapshot in the snapshot table (models are keyed by name)."""

PUBLISHED_AT_KEY = "trainer.published_at"
"""Key of the last publication's Unix time in the snapshot table, so a process that
loads a snapshot (a worker, or a trainer resuming) can tell its age."""


def published_at(snapshots: Mapping[str, bytes]) -> float | None:
    """When the snapshots in ``snapshots`` were published (None if never)."""
    raw = snapshots.get(PUBLISHED_AT_KEY)
    return float(raw) if raw is not None else None


def model_configs(settings: Settings) -> dict[str, ModelConfig]:
    """Build the purchase and engagement models' configurations from settings."""
    return {
        model.name: dataclasses.replace(model, min_positives=settings.min_positives)
        for model in (PURCHASE_MODEL, ENGAGEMENT_MODEL)
    }


class ModelRegistry:
    """The models this worker scores with, refreshed from the snapshot table."""

    def __init__(
        self,
        configs: Mapping[str, ModelConfig],
        snapshots: Mapping[str, bytes],
        metrics: Metrics | None = None,
    ) -> None:
        self._models = {name: PropensityModel(config) for name, config in configs.items()}
        self._snapshots = snapshots
        self._metrics = metrics
        self._loaded: dict[str, bytes] = {}
        # Built once: the ingestor asks for it on every event.
        self._scorers = Models(
            purchase=lambda x: self.score("purchase", x),
            engagement=lambda x: self.score("engagement", x),
        )

    def score(self, name: str, x: Mapping[str, float]) -> Score:
        """Score ``x`` with the newest snapshot of model ``name`` (the prior while cold)."""
        blob = self._snapshots.get(name)
        if blob is not None and blob is not self._loaded.get(name):
            self._models[name] = PropensityModel.restore(blob)
            self._loaded[name] = blob
            log.info("scoring with %s version %d", name, self._models[name].version)
            when = published_at(self._snapshots)
            if self._metrics is not None and when is not None:
                self._metrics.model_snapshot_timestamp.labels(name).set(when)
        return self._models[name].prediction(x)

    def engine_models(self) -> Models:
        """Return the scorers the engine calls (they always use the newest snapshot)."""
        return self._scorers

    def model(self, name: str) -> PropensityModel:
        """Return the model currently scoring as ``name``."""
        return self._models[name]


RECENT_EXAMPLES_KEPT = 100_000
"""Training example ids remembered to drop repeats: a worker that crashes
before its commit sends the examples of its last commit interval again, far
fewer than this. About 10 MB of ids."""

RECENT_EXAMPLES_SNAPSHOTTED = 10_000
"""Of those, the newest kept with each trainer snapshot (16 bytes each, 160 KB),
so a trainer that restarts still drops the repeats a crashed worker sends."""

LEARNED_IDS_KEY = "trainer.learned_ids"
"""Key of the snapshotted example ids in the snapshot table."""


class RecentIds:
    """The last ``size`` distinct example ids (32 hex digits) seen, in arrival order."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: dict[str, None] = {}

    def first_time(self, item: str) -> bool:
        """Remember ``item``; tell whether it was new."""
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]
        return True

    def to_bytes(self, newest: int) -> bytes:
        """Write the ``newest`` ids, oldest first, 16 raw bytes each."""
        ids = list(self._ids)[-newest:] if newest else []
        return b"".join(bytes.fromhex(item) for item in ids)

    def remember(self, raw: bytes) -> None:
        """Add ids written by :meth:`to_bytes` (a resumed trainer's memory)."""
        for start in range(0, len(raw) - len(raw) % 16, 16):
            self.first_time(raw[start : start + 16].hex())


@dataclass
class TrainerHost:
    """Runs the trainer on the worker that owns the training partition."""

    configs: Mapping[str, ModelConfig]
    snapshots: MutableMapping[str, bytes]
    policy: SnapshotPolicy
    metrics: Metrics
    _trainer: Trainer | None = None
    _since: int = 0
    _last_snapshot: float = field(default_factory=time.monotonic)
    _recent: RecentIds = field(default_factory=lambda: RecentIds(RECENT_EXAMPLES_KEPT))

    def learn(self, raw: bytes) -> None:
        """Predict, then learn one labelled example (once); snapshot when due."""
        trainer = self._trainer or self._resume()
        example = LabelledExample.from_bytes(raw)
        if not self._recent.first_time(example.example_id):
            log.debug("dropped a repeated training example %s", example.example_id)
            return
        outcome = trainer.learn_one(example)
        self._since += 1
        labels = (example.model,)
        self.metrics.model_examples_learned.labels(*labels).inc()
        if outcome.drift:
            self.metrics.model_drift.labels(*labels).inc()
            log.warning("drift detected in model %s: %s", example.model, outcome.signal)
        elapsed = time.monotonic() - self._last_snapshot
        if Trainer.snapshot_due(self._since, elapsed, self.policy):
            self.publish()

    def publish(self) -> None:
        """Write a snapshot of every model, and of the trainer, to the snapshot table."""
        trainer = self._trainer or self._resume()
        blob = trainer.snapshot()
        now = time.time()
        for name, model_blob in Trainer.model_snapshots(blob).items():
            self.snapshots[name] = model_blob
        self.snapshots[TRAINER_KEY] = blob
        self.snapshots[LEARNED_IDS_KEY] = self._recent.to_bytes(RECENT_EXAMPLES_SNAPSHOTTED)
        self.snapshots[PUBLISHED_AT_KEY] = repr(now).encode()
        for name, model in trainer.models.items():
            quality = model.quality.as_dict()
            self.metrics.model_auc.labels(name).set(quality["roc_auc"])
            self.metrics.model_log_loss.labels(name).set(quality["log_loss"])
            self.metrics.model_calibration_error.labels(name).set(quality["calibration_error"])
            self.metrics.model_snapshot_timestamp.labels(name).set(now)
        self._since = 0
        self._last_snapshot = time.monotonic()

    def _resume(self) -> Trainer:
        blob = self.snapshots.get(TRAINER_KEY)
        self._trainer = (
            Trainer.restore(blob) if blob is not None else Trainer.create(self.configs.values())
        )
        log.info("trainer %s", "resumed from its snapshot" if blob else "started from zero")
        self._recent.remember(self.snapshots.get(LEARNED_IDS_KEY) or b"")
        when = published_at(self.snapshots)
        if when is not None:  # the age alert must see a trainer that resumed and stalled
            for name in self._trainer.models:
                self.metrics.model_snapshot_timestamp.labels(name).set(when)
        return self._trainer
