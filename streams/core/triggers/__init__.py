"""Trigger rules: live profiles and scores in, candidate triggers and deadlines out.

One module per rule (:mod:`.browse_abandonment`, :mod:`.cart_abandonment`,
:mod:`.high_intent`), all with the signatures of :mod:`.base`; the registry
and the shell's two entry points are in :mod:`.rules`. Whether a candidate
becomes an email is :mod:`streams.core.policy`'s call.
"""

from streams.core.triggers.base import (
    Candidate,
    Deadline,
    DeadlineKey,
    Rule,
    RuleResult,
    Score,
    ScoreLike,
    Tier,
    TriggerConfig,
    TriggerType,
    tier,
)
from streams.core.triggers.rules import RULES, evaluate_deadline, evaluate_event

__all__ = [
    "RULES",
    "Candidate",
    "Deadline",
    "DeadlineKey",
    "Rule",
    "RuleResult",
    "Score",
    "ScoreLike",
    "Tier",
    "TriggerConfig",
    "TriggerType",
    "evaluate_deadline",
    "evaluate_event",
    "tier",
]
