"""The policy: whether a candidate trigger becomes an email, decided in one place.

:func:`decide` checks, in this order, and the first that applies wins:

1. **Suppression** (``suppressed`` with a reason): an erased customer; an
   unsubscribe or a spam complaint not followed by a later consent grant; a
   hard bounce (the first one is final); ``soft_bounce_limit`` soft bounces
   in a row; no email consent (revoked, or never stated while
   ``require_granted_consent``, the safe production default).
2. **Frequency cap** (``capped``): at most ``cap_count`` triggers of any
   type per customer in any ``cap_window`` (default 1 per 16 h), and never
   two of the same type within one, judged at the time the email would go
   (the end of the quiet hours if they hold it back). A capped trigger is
   not lost: it is recorded, and if the rule allows (``Candidate.reoffer``) and the cap
   frees within ``reoffer_within`` of the trigger, the decision carries
   ``retry_after`` and :func:`reoffer` gives the deadline at which the rule
   offers it once more (re-checking that it still applies).
3. **Holdout** (``holdout``): a stable ``holdout_share`` of customers,
   by :func:`holdout_bucket`, is the control group; their triggers are
   recorded and published on ``triggers.holdout``, never sent. Holdout is
   assigned after suppression and the cap, so the control group is
   measured on exactly the triggers the treated group would have received.
4. **Quiet hours** (``deferred``, optional, off by default): a trigger
   falling in the quiet hours of the customer's time zone is sent with
   ``send_after`` set to their end (the ESP holds it until then).

Otherwise ``sent``. :func:`apply_decision` records the send time (``send_after``
if deferred) in ``profile.last_trigger_at`` for ``sent``, ``deferred`` and
``holdout`` alike, so holdout customers keep the same cadence (cooldowns,
cap) as treated ones and the comparison stays fair. It also records the
trigger's key in ``profile.decided_keys`` once its decision is final (every
outcome but a ``capped`` one with ``retry_after``): the rules then offer
that key no more, so each trigger id gets one final decision on
``triggers.decisions`` however often the customer qualifies again.

Everything is judged in event time, at the candidate's ``offered_at`` (the
cap at the time the email would go), never at ``now``: a trigger decided
late, in a replay or a backlog, gets the decision it would have got on
time. ``now`` only stamps ``decided_at``.

The cap counts the latest trigger time of each type the profile keeps; since
a type never repeats within one window (the rules' cooldowns are longer, and
the cap checks it too), that count is exact when decisions come in event
time order, or (one per window) out of order by less than a window: the
watermark's lateness is minutes. The window looks both ways in time, so a
trigger deferred to the morning also blocks one offered the evening before.
Both are property-tested (``tests/unit/test_policy_properties.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Final, Literal, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.triggers import (
    Arm,
    DecisionMessage,
    DecisionReason,
    Outcome,
    TriggerMessage,
    TriggerType,
)
from streams.core.attributes import ConsentState
from streams.core.profile import Profile, Tombstone, record_decided, record_trigger
from streams.core.triggers.base import Candidate, Deadline, within

__all__ = [
    "HOLDOUT_BUCKETS",
    "Decision",
    "PolicyConfig",
    "QuietHours",
    "apply_decision",
    "decide",
    "holdout_bucket",
    "in_holdout",
    "reoffer",
    "suppression_reason",
]

HOLDOUT_BUCKETS: Final = 10_000
"""Customers are hashed into this many buckets; the holdout is the lowest ones."""

_SENDABLE: Final = frozenset({Outcome.sent, Outcome.deferred, Outcome.holdout})


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times between which no email should arrive: ``[start, end)``, may wrap midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall times: give naive times")
        if self.start == self.end:
            raise ValueError("quiet hours need start != end (set quiet_hours=None for none)")

    def contains(self, local: time) -> bool:
        """Tell whether a local wall time falls in the quiet hours."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Suppression, cap, holdout and quiet-hour settings (defaults from issue 5)."""

    soft_bounce_limit: int = 7
    """This many soft bounces in a row (no delivery, open or click since) suppress."""
    require_granted_consent: bool = True
    """True: only ``granted`` consent may be emailed. False: ``unknown`` may too."""
    cap_count: int = 1
    """At most this many triggers per customer in any ``cap_window``."""
    cap_window: timedelta = timedelta(hours=16)
    reoffer_capped: bool = True
    """Offer a capped trigger once more when the cap frees (if its rule allows)."""
    reoffer_within: timedelta = timedelta(hours=24)
    """No re-offer if the cap frees later than this after the trigger occurred."""
    holdout_share: float = 0.05
    """Share of customers in the control group, in steps of 1/10,000."""
    quiet_hours: QuietHours | None = None
    """Local quiet hours, or None (the default) for none."""
    default_time_zone: tzinfo = UTC
    """Zone of customers who never told theirs (use the business zone)."""
    trigger_ttl: timedelta = timedelta(hours=24)
    """A trigger's ``expires_at`` is this long after it may be sent."""

    def __post_init__(self) -> None:
        if self.soft_bounce_limit < 1 or self.cap_count < 1:
            raise ValueError("soft_bounce_limit and cap_count must be at least 1")
        if min(self.cap_window, self.reoffer_within, self.trigger_ttl) <= timedelta(0):
            raise ValueError("cap_window, reoffer_within and trigger_ttl must be positive")
        if not 0.0 <= self.holdout_share <= 1.0:
            raise ValueError("holdout_share must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy made of one candidate, and the messages to publish for it.

    ``trigger`` is the message for ``triggers.outbound`` (``sent``,
    ``deferred``) or ``triggers.holdout`` (``holdout``), None otherwise;
    :meth:`message` is the record for ``triggers.decisions`` (always).
    """

    candidate: Candidate
    outcome: Outcome
    reason: DecisionReason | None
    decided_at: datetime
    send_after: datetime | None = None
    retry_after: datetime | None = None
    trigger: TriggerMessage | None = None

    @property
    def trigger_id(self) -> str:
        """The trigger's deterministic id."""
        return self.candidate.trigger_id

    @property
    def destination(self) -> Literal["outbound", "holdout"] | None:
        """Where :attr:`trigger` goes: ``triggers.outbound``, ``triggers.holdout``, or nowhere."""
        if self.outcome is Outcome.holdout:
            return "holdout"
        return "outbound" if self.outcome in _SENDABLE else None

    @property
    def final(self) -> bool:
        """Tell whether this is the trigger's last decision: all but a cap that offers it again."""
        return self.retry_after is None

    @property
    def recorded_at(self) -> datetime | None:
        """The send time :func:`apply_decision` records, None if nothing is recorded."""
        if self.outcome not in _SENDABLE:
            return None
        return self.send_after or self.candidate.offered_at

    def message(self) -> DecisionMessage:
        """Build the ``triggers.decisions`` record of this decision."""
        candidate = self.candidate
        return DecisionMessage(
            trigger_id=candidate.trigger_id,
            customer_id=candidate.customer_id,
            trigger_type=candidate.trigger_type,
            key=candidate.key,
            outcome=self.outcome,
            reason=self.reason,
            trigger_reason=candidate.reason,
            tier=candidate.tier,
            attempt=candidate.attempt,
            occurred_at=candidate.occurred_at,
            decided_at=self.decided_at,
            send_after=self.send_after,
            retry_after=self.retry_after,
        )


def holdout_bucket(customer_id: str, salt: str) -> int:
    """Hash a customer into one of :data:`HOLDOUT_BUCKETS` buckets, stable for a salt.

    ``int(sha256(salt + customer_id)) % 10_000``: anyone with the salt can
    recompute a customer's arm; a new salt (a new experiment) reshuffles.

    Examples
    --------
    >>> holdout_bucket("c1", "exp-2024")
    1919
    >>> holdout_bucket("c1", "exp-2024") == holdout_bucket("c1", "exp-2024")
    True

    """
    digest = hashlib.sha256((salt + customer_id).encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % HOLDOUT_BUCKETS


def in_holdout(customer_id: str, salt: str, share: float) -> bool:
    """Tell whether the customer is in the control group of experiment ``salt``."""
    return holdout_bucket(customer_id, salt) < round(share * HOLDOUT_BUCKETS)


def _consented_after(profile: Profile, at: datetime) -> bool:
    consent = profile.email_consent
    return (
        consent.state is ConsentState.granted
        and consent.changed_at is not None
        and consent.changed_at > at
    )


def suppression_reason(profile: Profile | Tombstone, config: PolicyConfig) -> DecisionReason | None:
    """Say why the customer may not be emailed at all, or None if they may.

    An unsubscribe or complaint is lifted only by a consent granted after it.
    """
    if isinstance(profile, Tombstone):
        return DecisionReason.erased
    engagement = profile.engagement
    unsubscribed = engagement.unsubscribed_at
    if unsubscribed is not None and not _consented_after(profile, unsubscribed):
        return DecisionReason.unsubscribed
    complained = engagement.complained_at
    if complained is not None and not _consented_after(profile, complained):
        return DecisionReason.complained
    if engagement.hard_bounced:
        return DecisionReason.hard_bounced
    if engagement.soft_bounce_streak >= config.soft_bounce_limit:
        return DecisionReason.soft_bounces
    state = profile.email_consent.state
    if state is ConsentState.revoked or (
        state is ConsentState.unknown and config.require_granted_consent
    ):
        return DecisionReason.no_consent
    return None


def _cap_passes(
    sent: Mapping[str, datetime], trigger_type: TriggerType, at: datetime, config: PolicyConfig
) -> bool:
    window = config.cap_window
    if within(sent.get(trigger_type), at, window):
        return False
    return sum(1 for last in sent.values() if within(last, at, window)) < config.cap_count


def _cap_frees_at(
    profile: Profile, trigger_type: TriggerType, at: datetime, config: PolicyConfig
) -> datetime | None:
    # None if the cap lets a trigger sent at `at` through, else the first time it would.
    sent = profile.last_trigger_at
    if _cap_passes(sent, trigger_type, at, config):
        return None
    frees = sorted(
        last + config.cap_window for last in sent.values() if last + config.cap_window > at
    )
    for moment in frees:
        if _cap_passes(sent, trigger_type, moment, config):
            return moment
    return frees[-1]  # unreachable: every recorded trigger is a window away by then


def _zone(profile: Profile, config: PolicyConfig) -> tzinfo:
    if profile.time_zone is None:
        return config.default_time_zone
    try:
        return ZoneInfo(profile.time_zone.value)
    except (ZoneInfoNotFoundError, ValueError):
        return config.default_time_zone


def _quiet_until(profile: Profile, at: datetime, config: PolicyConfig) -> datetime | None:
    quiet = config.quiet_hours
    if quiet is None:
        return None
    zone = _zone(profile, config)
    local = at.astimezone(zone)
    if not quiet.contains(local.time()):
        return None
    day = local.date() if local.time() < quiet.end else local.date() + timedelta(days=1)
    # A wall time skipped or repeated by a DST change resolves with fold=0.
    return datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)


def _trigger_message(
    profile: Profile,
    candidate: Candidate,
    arm: Arm,
    now: datetime,
    send_after: datetime | None,
    config: PolicyConfig,
) -> TriggerMessage:
    score = candidate.score
    return TriggerMessage(
        customer_id=candidate.customer_id,
        trigger_type=candidate.trigger_type,
        key=candidate.key,
        arm=arm,
        tier=candidate.tier,
        segment=profile.segment,
        occurred_at=candidate.occurred_at,
        decided_at=now,
        send_after=send_after,
        expires_at=(send_after or candidate.offered_at) + config.trigger_ttl,
        attempt=candidate.attempt,
        score=None if score is None else score.probability,
        model_version=None if score is None else score.model_version,
        locale=None if profile.locale is None else profile.locale.value,
        time_zone=None if profile.time_zone is None else profile.time_zone.value,
        reason=candidate.reason,
        payload=candidate.payload,
    )


def decide(
    profile: Profile | Tombstone,
    candidate: Candidate,
    now: datetime,
    config: PolicyConfig,
    salt: str,
) -> Decision:
    """Decide what happens to a candidate trigger: sent, deferred, holdout, capped or suppressed.

    Parameters
    ----------
    profile
        The customer's current state (a tombstone is suppressed as ``erased``).
    candidate
        What a rule returned.
    now
        The shell's clock, aware; only stamps ``decided_at``.
    config
        Suppression, cap, holdout and quiet-hour settings.
    salt
        The holdout experiment's salt.

    Returns
    -------
    Decision
        The outcome, its reason, and the messages to publish. Apply it to
        the profile with :func:`apply_decision`.

    Raises
    ------
    ValueError
        If ``now`` is naive or the candidate is another customer's.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from schemas.clickstream import ProductView
    >>> from schemas.customers import ConsentChanged
    >>> from streams.core.reducer import ProfileConfig, apply
    >>> from streams.core.triggers import TriggerConfig, evaluate_deadline, evaluate_event
    >>> ten, eleven = datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC)
    >>> consent = ConsentChanged(
    ...     event_id="e0", customer_id="c1", occurred_at=ten, channel="email", granted=True
    ... )
    >>> view = ProductView(
    ...     event_id="e1", customer_id="c1", occurred_at=ten, session_id="s1",
    ...     product_id="sku-1", price=Decimal("20"), currency="EUR",
    ... )
    >>> config = ProfileConfig()
    >>> profile = apply(apply(None, consent, config).profile, view, config).profile
    >>> rules = TriggerConfig()
    >>> (deadline,) = evaluate_event(profile, view, None, ten, rules).deadlines_set
    >>> (candidate,) = evaluate_deadline(profile, deadline, None, eleven, rules).candidates
    >>> decision = decide(profile, candidate, eleven, PolicyConfig(holdout_share=0), "exp-1")
    >>> decision.outcome.value, decision.destination, decision.trigger.tier.value
    ('sent', 'outbound', 'educational')
    >>> profile = apply_decision(profile, decision)
    >>> decide(profile, candidate, eleven, PolicyConfig(), "exp-1").outcome.value
    'capped'

    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    if profile.customer_id != candidate.customer_id:
        raise ValueError(
            f"candidate of {candidate.customer_id!r} with the profile of {profile.customer_id!r}"
        )
    reason = suppression_reason(profile, config)
    if reason is not None or isinstance(profile, Tombstone):
        return Decision(candidate, Outcome.suppressed, reason or DecisionReason.erased, now)
    # The cap is judged when the email would go: after the quiet hours.
    send_after = _quiet_until(profile, candidate.offered_at, config)
    send_at = send_after or candidate.offered_at
    frees_at = _cap_frees_at(profile, candidate.trigger_type, send_at, config)
    if frees_at is not None:
        retry = (
            config.reoffer_capped
            and candidate.reoffer
            and candidate.attempt == 0
            and frees_at - candidate.occurred_at <= config.reoffer_within
        )
        return Decision(
            candidate,
            Outcome.capped,
            DecisionReason.frequency_cap,
            now,
            retry_after=frees_at if retry else None,
        )
    if in_holdout(candidate.customer_id, salt, config.holdout_share):
        outcome, why, arm = Outcome.holdout, DecisionReason.holdout, Arm.holdout
    elif send_after is not None:
        outcome, why, arm = Outcome.deferred, DecisionReason.quiet_hours, Arm.treatment
    else:
        outcome, why, arm = Outcome.sent, None, Arm.treatment
    trigger = _trigger_message(profile, candidate, arm, now, send_after, config)
    return Decision(candidate, outcome, why, now, send_after=send_after, trigger=trigger)


@overload
def apply_decision(profile: Profile, decision: Decision) -> Profile: ...
@overload
def apply_decision(profile: Tombstone, decision: Decision) -> Tombstone: ...
@overload
def apply_decision(profile: Profile | Tombstone, decision: Decision) -> Profile | Tombstone: ...


def apply_decision(profile: Profile | Tombstone, decision: Decision) -> Profile | Tombstone:
    """Record a decision in the profile: the send time, and the key once decided for good.

    A sent, deferred or held-out trigger is recorded in
    ``profile.last_trigger_at`` at the time the email goes (or, held out,
    would go): the end of the quiet hours if deferred, else the candidate's
    ``offered_at``. A final decision (:attr:`Decision.final`) also records
    the trigger's key in ``profile.decided_keys``, so the rule does not offer
    it again; a capped trigger offered once more leaves the profile as it is.
    """
    if isinstance(profile, Tombstone):
        return profile
    candidate = decision.candidate
    trigger_type = candidate.trigger_type.value
    if decision.final:
        profile = record_decided(profile, trigger_type, candidate.key)
    at = decision.recorded_at
    if at is not None:
        profile = record_trigger(profile, trigger_type, at)
    return profile


def reoffer(decision: Decision) -> Deadline | None:
    """Give the deadline at which a capped trigger is offered once more, if it is.

    The shell stores it like any deadline; the rule then checks the trigger
    still applies (no order since, cart still open...) and offers it with
    ``attempt`` 1, which is never re-offered again.
    """
    if decision.outcome is not Outcome.capped or decision.retry_after is None:
        return None
    candidate = decision.candidate
    return Deadline(
        customer_id=candidate.customer_id,
        rule=candidate.trigger_type,
        key=candidate.key,
        due_at=decision.retry_after,
        attempt=candidate.attempt + 1,
    )
