"""Cold-start priors: a hand-set logistic score until a model has learned enough.

Until a model has learned ``min_positives`` positive examples its scores are
noise, so :meth:`online_models.propensity.PropensityModel.prediction` answers
with a prior instead, tagged ``model_version="prior"``. A prior is a logistic
of a weighted sum of a few features, each read as ``min(max(x, 0), cap)``
(a missing or non-finite feature reads as 0), clipped to ``[floor, ceiling]``
(default ``[0.01, 0.99]``). It reads the same feature dict the model scores
(:func:`online_models.features.features`), so it sees the same customer.

It is monotone by construction: a term with a positive weight never lowers
the probability as its feature grows, one with a negative weight never
raises it. The weights are judgement, not fitted; they are set so that the
probabilities land near published e-commerce rates (a visit converts about
1-3% of the time, a started checkout a few times in ten, a marketing email is
clicked 2-3% of the time), which is "calibrated" only in that loose sense.

Purchase within the horizon (:data:`PURCHASE_PRIOR`), logit terms:

=========================  ======  ====  ===========================================
feature                    weight  cap   why
=========================  ======  ====  ===========================================
(intercept)                -4.6          about 1%: someone who has done nothing yet
``rfm_r``                  +0.3    5     recent buyers buy again (up to +1.5)
``rfm_f``                  +0.2    5     frequent buyers buy again (up to +1.0)
``session_products``       +0.15   10    browsing depth (up to +1.5)
``session_searches``       +0.1    5     searching is looking for something
``has_cart``               +0.8    1     a cart is open
``cart_lines``             +0.15   5     a fuller cart (up to +0.75)
``checkout_started``       +2.0    1     the strongest single signal
``days_since_last_visit``  -0.02   30    a visit a month ago counts for less (-0.6)
=========================  ======  ====  ===========================================

So a first visit with three products viewed scores about 1.6%, the same
visitor with a two-line cart in checkout about 26%, a champion (R 5, F 5) in
the same position about 81%.

Click within 72 hours of a send (:data:`ENGAGEMENT_PRIOR`): intercept -3.7
(about 2.4%), ``click_rate_30d`` +2.0 (cap 1), ``open_rate_30d`` +0.8 (cap 1),
``rfm_r`` +0.1 (cap 5), ``soft_bounce_streak`` -0.3 (cap 5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["ENGAGEMENT_PRIOR", "PURCHASE_PRIOR", "Prior", "PriorTerm"]


@dataclass(frozen=True, slots=True)
class PriorTerm:
    """One feature of a prior: ``weight * min(max(x[feature], 0), cap)``."""

    feature: str
    weight: float
    cap: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and math.isfinite(self.cap) and self.cap > 0):
            raise ValueError(f"prior term {self.feature!r} needs a finite weight and a cap > 0")


@dataclass(frozen=True, slots=True)
class Prior:
    """A logistic of a weighted sum of capped features, clipped to ``[floor, ceiling]``."""

    intercept: float
    terms: tuple[PriorTerm, ...]
    floor: float = 0.01
    ceiling: float = 0.99

    def __post_init__(self) -> None:
        if not 0.0 < self.floor < self.ceiling < 1.0:
            raise ValueError("a prior needs 0 < floor < ceiling < 1")
        if not math.isfinite(self.intercept):
            raise ValueError("a prior's intercept must be finite")

    def probability(self, x: Mapping[str, float]) -> float:
        """Score a feature dict; missing features read as 0.

        Examples
        --------
        >>> PURCHASE_PRIOR.probability({})
        0.01
        >>> visit = {"session_products": 3.0, "days_since_last_visit": 0.0}
        >>> round(PURCHASE_PRIOR.probability(visit), 3)
        0.016
        >>> checkout = {**visit, "has_cart": 1.0, "cart_lines": 2.0, "checkout_started": 1.0}
        >>> round(PURCHASE_PRIOR.probability(checkout), 3)
        0.259

        """
        z = self.intercept
        for term in self.terms:
            value = x.get(term.feature, 0.0)
            if not value > 0.0:  # also NaN
                continue
            z += term.weight * min(value, term.cap)
        p = 1.0 / (1.0 + math.exp(-z))
        return min(max(p, self.floor), self.ceiling)


PURCHASE_PRIOR: Final = Prior(
    intercept=-4.6,
    terms=(
        PriorTerm("rfm_r", 0.3, 5.0),
        PriorTerm("rfm_f", 0.2, 5.0),
        PriorTerm("session_products", 0.15, 10.0),
        PriorTerm("session_searches", 0.1, 5.0),
        PriorTerm("has_cart", 0.8, 1.0),
        PriorTerm("cart_lines", 0.15, 5.0),
        PriorTerm("checkout_started", 2.0, 1.0),
        PriorTerm("days_since_last_visit", -0.02, 30.0),
    ),
)
"""P(order within the horizon): see the module docstring for the weights."""

ENGAGEMENT_PRIOR: Final = Prior(
    intercept=-3.7,
    terms=(
        PriorTerm("click_rate_30d", 2.0, 1.0),
        PriorTerm("open_rate_30d", 0.8, 1.0),
        PriorTerm("rfm_r", 0.1, 5.0),
        PriorTerm("soft_bounce_streak", -0.3, 5.0),
    ),
)
"""P(click within 72 hours of a send): see the module docstring for the weights."""
