"""The replay topic (``kind=None``) carries every event type, each decoded as on its own topic."""

from __future__ import annotations

import orjson
import pytest

from schemas import DecodeError, TopicKind, decode
from schemas.codec import EVENT_TYPES
from tests.unit.schema_samples import LIMITS, NOW, dumps, full

pytestmark = pytest.mark.unit

KIND_OF = {tag: kind for kind, members in EVENT_TYPES.items() for tag in members}


@pytest.mark.parametrize("event_type", sorted(KIND_OF))
def test_every_event_type_decodes_on_the_replay_topic_as_on_its_own(event_type: str) -> None:
    raw = dumps(full(event_type))
    on_replay = decode(None, raw, now=NOW, limits=LIMITS)
    assert not isinstance(on_replay, DecodeError), on_replay
    assert on_replay == decode(KIND_OF[event_type], raw, now=NOW, limits=LIMITS)


def test_an_unknown_type_on_the_replay_topic_names_the_topic() -> None:
    raw = orjson.dumps({"type": "teleport", "event_id": "e1", "customer_id": "c1"})
    error = decode(None, raw, now=NOW, limits=LIMITS)
    assert isinstance(error, DecodeError)
    assert error.reason == "unknown_type"
    assert "the replay topic carries" in error.detail
    assert isinstance(decode(TopicKind.cart, raw, now=NOW, limits=LIMITS), DecodeError)
