"""Fuzz the decoder, the profile reducer and the engine step together.

Run ``python -m fuzz.fuzz_decode_reduce [libFuzzer flags] [corpus dir...]``
from the repository root (``make fuzz`` does, for ``FUZZ_SECONDS``).

An input is one or more message values separated by newlines (JSON needs no
raw newline, so a split never cuts a message that could have been valid).
Each value is decoded as each inbound topic would decode it; a value that
decodes is applied, in order, to the state of its customer, which evolves
from one value to the next as on a worker. A broken invariant raises, and
libFuzzer saves the input that broke it:

* ``decode`` never raises, and never answers with its catch-all "unexpected
  error" (that would be a check that crashed, hidden as a rejection); every
  rejection makes a dead letter that reads back equal, with the bytes intact.
* A value decodes on at most one topic, and an event re-encoded decodes equal.
* The reducer and the engine never raise for a valid event. An applied event
  counts once and is a duplicate the second time; an erased customer stays a
  tombstone; every state (profile, deadlines, pending labels) reads back equal
  from its bytes; every outbound message is JSON.

The engine's clock is the newest event time of the input: the worker's
watermark also subtracts the allowed lateness, which is the shell's
arithmetic and is exercised by the poison volume test instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import atheris
import orjson

# Only Nudge's own pure packages are instrumented: coverage of pydantic and
# River internals would steer the fuzzer towards libraries, not Nudge.
with atheris.instrument_imports(include=["schemas", "streams.core", "online_models"]):
    from online_models.labels import Pending
    from online_models.propensity import ENGAGEMENT_MODEL, PURCHASE_MODEL, PropensityModel
    from schemas import (
        CustomerErased,
        DeadLetter,
        DecodeError,
        DecodeLimits,
        InboundEvent,
        SourceMessage,
        TopicKind,
        dead_letter_from_error,
        decode,
        encode,
    )
    from schemas.codec import MAX_FIELD_ERRORS
    from streams.core import engine
    from streams.core.engine import Deadlines, EngineConfig, Models, Result
    from streams.core.profile import Profile, Tombstone, state_from_bytes
    from streams.core.reducer import apply

NOW = datetime(2026, 12, 1, tzinfo=UTC)
"""The decoding time: after every seed's event time, so the seeds decode."""

LIMITS = DecodeLimits(max_bytes=256 * 1024, max_future_skew=timedelta(minutes=5))
"""The worker's defaults."""

RE_ENCODED = DecodeLimits(max_bytes=16 * 1024 * 1024, max_future_skew=timedelta(minutes=5))
"""Room for a re-encoded event, which may be longer than the bytes it came from."""

MAX_MESSAGES = 16
"""Values per input beyond this are ignored: sequences, not volume, find the bugs here."""

CONFIG = EngineConfig()
MODELS = Models(
    purchase=PropensityModel(PURCHASE_MODEL).prediction,
    engagement=PropensityModel(ENGAGEMENT_MODEL).prediction,
)


@dataclass
class Worker:
    """The per-customer state one input builds up, as a worker's tables would hold it."""

    states: dict[str, Result] = field(default_factory=dict)
    clock: datetime | None = None

    def state(self, customer_id: str) -> Result:
        """Return the customer's state, empty for a customer not seen yet."""
        return self.states.get(customer_id) or Result(
            None, Deadlines(customer_id=customer_id), None
        )


def check_rejection(kind: TopicKind, value: bytes, error: DecodeError) -> None:
    """Check that a rejection says why in bounded words and dead-letters the bytes intact."""
    assert not error.detail.startswith("unexpected error"), error.detail
    assert len(error.detail) <= 1000
    assert len(error.errors) <= MAX_FIELD_ERRORS
    source = SourceMessage(kind.value, 0, 0, NOW, b"key", value)
    letter = dead_letter_from_error(error, source, now=NOW)
    assert DeadLetter.from_bytes(letter.to_bytes()) == letter
    assert letter.raw_value() == value


def check_round_trip(kind: TopicKind, event: InboundEvent) -> None:
    """Check that an event written back to bytes decodes to the same event."""
    again = decode(kind, encode(event), now=NOW, limits=RE_ENCODED)
    assert again == event, (event, again)


def check_step(before: Profile | Tombstone | None, event: InboundEvent) -> None:
    """Check the reducer alone: counts, duplicates, erasure and the stored form."""
    step = apply(before, event, CONFIG.profile)
    after = step.profile
    assert state_from_bytes(after.to_bytes()) == after
    for output in step.outputs:
        orjson.loads(output.to_bytes())
    if isinstance(before, Tombstone):
        assert (after, step.applied, step.reason) == (before, False, "erased")
        return
    if isinstance(event, CustomerErased) and step.applied:
        assert isinstance(after, Tombstone)
        return
    assert isinstance(after, Profile)
    assert after.customer_id == event.customer_id
    assert after.first_seen <= after.last_seen
    assert len(after.recent_event_ids) <= CONFIG.profile.dedupe_window
    if step.applied:
        counted = before.events_applied if before is not None else 0
        assert after.events_applied == counted + 1
        again = apply(after, event, CONFIG.profile)
        assert (again.applied, again.reason, again.profile) == (False, "duplicate_event", after)
    else:
        assert after is before


def check_stored(result: Result) -> None:
    """Check that what the shell would write to its tables reads back equal."""
    if result.profile is not None:
        assert state_from_bytes(result.profile.to_bytes()) == result.profile
    assert Deadlines.from_bytes(result.deadlines.to_bytes()) == result.deadlines
    if result.pending is not None:
        assert Pending.from_bytes(result.pending.to_bytes()) == result.pending
    for message in result.messages:
        orjson.loads(message.value)


def run_engine(worker: Worker, event: InboundEvent) -> None:
    """Apply ``event`` through the engine, then fire what the input's clock made due."""
    customer = event.customer_id
    state = worker.state(customer)
    check_step(state.profile, event)
    worker.clock = max(worker.clock or event.occurred_at, event.occurred_at)
    now = worker.clock
    result = engine.on_event(
        state.profile, state.deadlines, state.pending, event, now, MODELS, CONFIG
    )
    check_stored(result)
    if isinstance(state.profile, Tombstone):
        assert result.profile == state.profile
        assert not result.applied
    for deadline in result.deadlines.items:
        if deadline.due_at > now:
            break
        result = engine.on_deadline(
            result.profile, result.deadlines, result.pending, deadline, now, CONFIG
        )
        check_stored(result)
    pending, labelled = engine.expire_labels(result.pending, now)
    for message in labelled:
        orjson.loads(message.value)
    worker.states[customer] = Result(result.profile, result.deadlines, pending)


def test_one_input(data: bytes) -> None:
    """Decode each value of ``data`` on every topic; apply what decodes, in order."""
    worker = Worker()
    for value in data.split(b"\n")[:MAX_MESSAGES]:
        decoded: list[tuple[TopicKind, InboundEvent]] = []
        for kind in TopicKind:
            outcome = decode(kind, value, now=NOW, limits=LIMITS)
            if isinstance(outcome, DecodeError):
                check_rejection(kind, value, outcome)
            else:
                decoded.append((kind, outcome))
        assert len(decoded) <= 1, "one event type, one topic"
        for kind, event in decoded:
            check_round_trip(kind, event)
            run_engine(worker, event)


def main() -> None:
    """Hand the command line to libFuzzer and fuzz until it stops."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
