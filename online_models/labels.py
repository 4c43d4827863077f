"""Delayed labels: feature snapshots held per customer until the outcome is known.

When a customer is scored, the shell calls :func:`maybe_snapshot` to keep the
features it scored; when an event arrives, or the clock moves on, it calls
:func:`resolve`, which labels what the event or the passing time settled and
returns those :class:`LabelledExample` values for the training topic.

* Purchase model: an ``order_completed`` at ``t`` labels *positive* every
  pending purchase snapshot with ``taken_at <= t < horizon_ends_at``.
* Engagement model: the shell snapshots on ``email_sent`` (horizon 72 h); an
  ``email_click`` at ``t`` labels positive every pending engagement snapshot
  with ``taken_at <= t < horizon_ends_at``. Clicks are not matched to the
  message: a click inside the window of two sends answers both.
* Any snapshot whose horizon has ended (``now >= horizon_ends_at``) and that
  no outcome labelled is *negative*.

Each snapshot leaves the buffer when it is labelled, so it is learned once.
Labels depend on event times only: ``labelled_at`` is the outcome's time for
a positive and the end of the horizon for a negative, never the moment of
processing. The shell passes as ``now`` its event-time watermark (the latest
event time minus the allowed lateness), so an order that arrives late, but
within the lateness, still finds its snapshots pending and labels them
positive; a later one finds them already learned as negatives.

Snapshots are rate-limited per customer and model (one per ``min_interval``,
counted from the last one *taken*, even if it has been labelled since) and
bounded per customer (``max_pending``; the oldest goes, counted in
:attr:`Pending.dropped`). A snapshot is only taken at an event time at least
``min_interval`` after the last one of that model, so an event that arrives
late never snapshots: its features would come from a profile that already
knows what happened after it.

The state is a frozen value with a byte form, stored by the shell in a table
keyed by customer id and reassigned on change (``table[id] = pending``).
Functions return the very object passed in when nothing changed, so the shell
can skip the write (``if new is not old``). :func:`erased` is the state of a
customer who asked to be forgotten.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import operator
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic import Field

from schemas.codec import InboundEvent
from schemas.common import UtcDatetime
from streams.core.frozen import FrozenModel

__all__ = [
    "ENGAGEMENT",
    "OUTCOMES",
    "PURCHASE",
    "LabelledExample",
    "Pending",
    "PendingExample",
    "erased",
    "maybe_snapshot",
    "resolve",
]

PURCHASE: Final = "purchase"
"""The purchase propensity model's name."""

ENGAGEMENT: Final = "engagement"
"""The email engagement model's name."""

_HORIZON_END: Final = operator.attrgetter("horizon_ends_at")

OUTCOMES: Final[Mapping[str, str]] = {"order_completed": PURCHASE, "email_click": ENGAGEMENT}
"""Which model's snapshots an event type labels positive."""


class PendingExample(FrozenModel):
    """A feature snapshot waiting for its label."""

    model: str
    customer_id: str
    taken_at: UtcDatetime
    features: dict[str, float]
    horizon_ends_at: UtcDatetime


class LabelledExample(FrozenModel):
    """A snapshot with its label: one message of the training topic."""

    model: str
    customer_id: str
    features: dict[str, float]
    label: bool
    taken_at: UtcDatetime
    labelled_at: UtcDatetime

    @property
    def example_id(self) -> str:
        """A stable id (model, customer, snapshot time), to drop a redelivered example."""
        key = "\x1f".join((self.model, self.customer_id, self.taken_at.isoformat()))
        return hashlib.sha256(key.encode()).hexdigest()[:32]


class Pending(FrozenModel):
    """One customer's pending snapshots, oldest first, and the rate-limit clock.

    ``last_taken_at`` maps a model to the time of its latest snapshot;
    ``dropped`` counts the snapshots evicted unlabelled by the bound.
    """

    customer_id: str
    examples: tuple[PendingExample, ...] = ()
    last_taken_at: dict[str, UtcDatetime] = Field(default_factory=dict)
    dropped: int = 0

    @property
    def next_horizon_end(self) -> datetime | None:
        """When the next snapshot expires: a deadline for the shell's timer."""
        return min(map(_HORIZON_END, self.examples), default=None)


def _aware(name: str, at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"`{name}` must be timezone-aware")


def _order(example: PendingExample) -> tuple[datetime, str]:
    return example.taken_at, example.model


def maybe_snapshot(
    pending: Pending | None,
    customer_id: str,
    model: str,
    features: Mapping[str, float],
    now: datetime,
    min_interval: timedelta = timedelta(minutes=10),
    horizon: timedelta = timedelta(hours=24),
    max_pending: int = 64,
) -> Pending:
    """Keep a feature snapshot unless one of ``model`` was taken within ``min_interval``.

    Parameters
    ----------
    pending
        The customer's state, or None if there is none yet.
    customer_id
        The customer scored.
    model
        The model the snapshot is for (``"purchase"``, ``"engagement"``).
    features
        The features scored (copied; every value must be finite).
    now
        The event time of the scoring: the snapshot's ``taken_at``.
    min_interval
        No snapshot of this model before ``last_taken_at + min_interval``.
    horizon
        The snapshot waits ``horizon`` for its outcome.
    max_pending
        Snapshots kept per customer, all models together; the oldest goes.

    Returns
    -------
    Pending
        The new state, or ``pending`` itself when no snapshot was taken.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> at = datetime(2024, 5, 1, 9, tzinfo=UTC)
    >>> pending = maybe_snapshot(None, "c1", "purchase", {"cart_lines": 1.0}, at)
    >>> again = maybe_snapshot(pending, "c1", "purchase", {}, at + timedelta(minutes=5))
    >>> again is pending, len(pending.examples), pending.next_horizon_end
    (True, 1, datetime.datetime(2024, 5, 2, 9, 0, tzinfo=datetime.timezone.utc))

    """
    _aware("now", now)
    if max_pending < 1 or horizon <= timedelta(0) or min_interval < timedelta(0):
        raise ValueError("max_pending >= 1, horizon > 0 and min_interval >= 0 are required")
    if pending is None:
        pending = Pending(customer_id=customer_id)
    elif pending.customer_id != customer_id:
        raise ValueError(f"snapshot of {customer_id!r} for the state of {pending.customer_id!r}")
    last = pending.last_taken_at.get(model)
    if last is not None and now < last + min_interval:
        return pending
    if not all(map(math.isfinite, features.values())):
        raise ValueError("features must be finite")
    example = _pending_example(model, customer_id, features, now, now + horizon)
    examples = list(pending.examples)
    bisect.insort(examples, example, key=_order)
    dropped = max(0, len(examples) - max_pending)
    return pending.updated(
        {
            "examples": tuple(examples[dropped:]),
            "last_taken_at": dict(
                sorted({**pending.last_taken_at, model: example.taken_at}.items())
            ),
            "dropped": pending.dropped + dropped,
        }
    )


def _pending_example(
    model: str, customer_id: str, features: Mapping[str, float], taken_at: datetime, ends: datetime
) -> PendingExample:
    """Build a snapshot, skipping validation when it would change nothing.

    Validating 55 features costs 5 us; plain ``str`` names, ``float`` values
    and UTC times (the engine's, from decoded events) are already what it
    would return. Anything else is validated as before.
    """
    valid = (
        type(model) is str
        and type(customer_id) is str
        and taken_at.tzinfo is UTC
        and ends.tzinfo is UTC
        and set(map(type, features)) <= {str}
        and set(map(type, features.values())) <= {float}
    )
    build = PendingExample.from_valid if valid else PendingExample
    return build(
        model=model,
        customer_id=customer_id,
        taken_at=taken_at,
        features=dict(features),
        horizon_ends_at=ends,
    )


def _labelled(example: PendingExample, label: bool, at: datetime) -> LabelledExample:
    # The snapshot's fields were valid when it was taken; only ``label`` and ``at`` are new.
    valid = at.tzinfo is UTC and type(label) is bool
    build = LabelledExample.from_valid if valid else LabelledExample
    return build(
        model=example.model,
        customer_id=example.customer_id,
        features=dict(example.features),
        label=label,
        taken_at=example.taken_at,
        labelled_at=at,
    )


def resolve(
    pending: Pending | None,
    outcome: InboundEvent | None,
    now: datetime,
    outcomes: Mapping[str, str] = OUTCOMES,
) -> tuple[Pending | None, tuple[LabelledExample, ...]]:
    """Label what ``outcome`` or the passing of ``now`` settled, and drop it from the buffer.

    Parameters
    ----------
    pending
        The customer's state (None: nothing pending, nothing to do).
    outcome
        The customer's event just applied, or None on a clock tick. Only the
        event types in ``outcomes`` label anything.
    now
        Event time now (the watermark): snapshots with
        ``horizon_ends_at <= now`` not labelled positive become negatives.
    outcomes
        Event type -> the model whose snapshots it labels positive.

    Returns
    -------
    tuple[Pending | None, tuple[LabelledExample, ...]]
        The new state (``pending`` itself if nothing changed) and the
        examples labelled, positives first, each group oldest first.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from decimal import Decimal
    >>> from schemas.cart import OrderCompleted, OrderLine
    >>> at = datetime(2024, 5, 1, 9, tzinfo=UTC)
    >>> pending = maybe_snapshot(None, "c1", "purchase", {"cart_lines": 1.0}, at)
    >>> order = OrderCompleted(
    ...     event_id="e9", customer_id="c1", occurred_at=at + timedelta(hours=3),
    ...     order_id="o1", lines=(OrderLine(product_id="p", quantity=1, unit_price=Decimal(5)),),
    ...     total=Decimal(5), currency="EUR",
    ... )
    >>> pending, labelled = resolve(pending, order, order.occurred_at)
    >>> [(e.model, e.label, e.labelled_at.hour) for e in labelled], pending.examples
    ([('purchase', True, 12)], ())

    """
    _aware("now", now)
    if pending is None or not pending.examples:
        return pending, ()
    if outcome is not None and outcome.customer_id != pending.customer_id:
        raise ValueError(
            f"outcome of {outcome.customer_id!r} for the state of {pending.customer_id!r}"
        )
    model = None if outcome is None else outcomes.get(outcome.type)
    positives: list[LabelledExample] = []
    negatives: list[LabelledExample] = []
    kept: list[PendingExample] = []
    for example in pending.examples:
        if (
            outcome is not None
            and example.model == model
            and example.taken_at <= outcome.occurred_at < example.horizon_ends_at
        ):
            positives.append(_labelled(example, True, outcome.occurred_at))
        elif example.horizon_ends_at <= now:
            negatives.append(_labelled(example, False, example.horizon_ends_at))
        else:
            kept.append(example)
    if not positives and not negatives:
        return pending, ()
    return pending.updated({"examples": tuple(kept)}), (*positives, *negatives)


def erased(customer_id: str) -> Pending:
    """Return the state of an erased customer: nothing pending, no clock, no counts.

    Examples
    --------
    >>> erased("c1").examples
    ()

    """
    return Pending(customer_id=customer_id)
