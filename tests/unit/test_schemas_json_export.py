"""The checked-in JSON Schemas are the contract: they must match the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import schemas.export
from schemas.codec import EVENT_TYPES, TopicKind
from schemas.deadletter import DeadLetterReason
from schemas.export import JSON_SCHEMA_DIALECT, main, render_all
from schemas.profiles import Segment
from schemas.triggers import DecisionReason, Outcome, Tier, TriggerType

pytestmark = pytest.mark.unit

SCHEMA_DIR = Path(schemas.export.__file__).parent / "json"
TOPIC_FILES = {f"{kind}.json": kind for kind in TopicKind}


def _load(name: str) -> Any:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def test_one_file_per_topic_and_the_dead_letter() -> None:
    outbound = {"deadletter.json", "profiles.json", "triggers.json", "decisions.json"}
    assert set(render_all()) == {*TOPIC_FILES, *outbound}
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == set(render_all())


@pytest.mark.parametrize("name", sorted(render_all()))
def test_checked_in_schema_matches_the_models(name: str) -> None:
    checked_in = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert checked_in == render_all()[name], (
        f"schemas/json/{name} is out of date with the models: run `make schemas` and commit it"
    )


@pytest.mark.parametrize("name", sorted(render_all()))
def test_file_format_is_stable(name: str) -> None:
    text = render_all()[name]
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize(("name", "kind"), sorted(TOPIC_FILES.items()))
def test_topic_schema_is_a_discriminated_union(name: str, kind: TopicKind) -> None:
    schema = _load(name)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["discriminator"]["propertyName"] == "type"
    tags = set(EVENT_TYPES[kind])
    assert set(schema["discriminator"]["mapping"]) == tags
    refs = {branch["$ref"] for branch in schema["oneOf"]}
    assert refs == set(schema["discriminator"]["mapping"].values())
    for ref in refs:
        definition = schema["$defs"][ref.removeprefix("#/$defs/")]
        assert definition["type"] == "object"
        assert definition["required"][:4] == ["type", "event_id", "customer_id", "occurred_at"]
        assert definition["properties"]["type"]["const"] in tags
    consts = {
        schema["$defs"][ref.removeprefix("#/$defs/")]["properties"]["type"]["const"] for ref in refs
    }
    assert consts == tags


def test_dead_letter_schema_lists_every_reason() -> None:
    schema = _load("deadletter.json")
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["type"] == "object"
    reasons = schema["$defs"]["DeadLetterReason"]["enum"]
    assert reasons == [r.value for r in DeadLetterReason]
    assert {"value_b64", "key_b64", "topic", "partition", "offset"} <= set(schema["required"])


def test_profiles_schema_lists_every_message_and_segment() -> None:
    schema = _load("profiles.json")
    tags = {
        schema["$defs"][name]["properties"]["type"]["const"]
        for name in ("SegmentChanged", "ProfileErased")
    }
    assert tags == {"segment_changed", "profile_erased"}
    assert schema["$defs"]["Segment"]["enum"] == [s.value for s in Segment]
    assert "message_id" in schema["$defs"]["SegmentChanged"]["required"]


def test_triggers_schema_is_the_outbound_contract() -> None:
    schema = _load("triggers.json")
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    required = set(schema["required"])
    assert {"trigger_id", "customer_id", "trigger_type", "tier", "payload"} <= required
    assert {"occurred_at", "decided_at", "expires_at", "arm", "segment"} <= required
    assert {"send_after", "score", "model_version", "locale", "time_zone"} <= set(
        schema["properties"]
    )
    payload = schema["properties"]["payload"]
    assert payload["discriminator"]["propertyName"] == "type"
    assert set(payload["discriminator"]["mapping"]) == {t.value for t in TriggerType}
    assert schema["$defs"]["TriggerType"]["enum"] == [t.value for t in TriggerType]
    assert schema["$defs"]["Tier"]["enum"] == [t.value for t in Tier]
    # The contract carries ids, never an address or a name.
    assert not {"email", "email_address", "name"} & set(schema["properties"])


def test_decisions_schema_lists_every_outcome_and_reason() -> None:
    schema = _load("decisions.json")
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert {"trigger_id", "decision_id", "outcome", "decided_at"} <= set(schema["required"])
    assert schema["$defs"]["Outcome"]["enum"] == [o.value for o in Outcome]
    assert schema["$defs"]["DecisionReason"]["enum"] == [r.value for r in DecisionReason]


def test_main_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out")]) == 0
    for name, text in render_all().items():
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == text
    assert "deadletter.json" in capsys.readouterr().out


def test_main_needs_one_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err
