import os
from pathlib import Path

import pytest

from streams.settings import InvalidSettingsError, Settings, load_settings
from streams.topics import topic_specs

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("NUDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("NUDGE_TOPIC_PARTITIONS", "0", "NUDGE_TOPIC_PARTITIONS"),
        ("NUDGE_TOPIC_PARTITIONS", "many", "NUDGE_TOPIC_PARTITIONS"),
        ("NUDGE_BOOTSTRAP_SERVERS", "localhost", "NUDGE_BOOTSTRAP_SERVERS"),
        ("NUDGE_BOOTSTRAP_SERVERS", "a:1,b:notaport", "NUDGE_BOOTSTRAP_SERVERS"),
        ("NUDGE_STORE", "redis://", "NUDGE_STORE"),
        ("NUDGE_WEB_PORT", "70000", "NUDGE_WEB_PORT"),
        ("NUDGE_TOPIC_CART", "has space", "NUDGE_TOPIC_CART"),
        ("NUDGE_MAX_EVENT_BYTES", "10", "NUDGE_MAX_EVENT_BYTES"),
        ("NUDGE_AUTO_OFFSET_RESET", "middle", "NUDGE_AUTO_OFFSET_RESET"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert named in message
    assert "cannot start" in message


def test_topics_must_be_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_TOPIC_CART", "clickstream")
    with pytest.raises(InvalidSettingsError, match="distinct"):
        load_settings()


def test_defaults_bind_loopback_and_keep_state_in_memory() -> None:
    settings = load_settings()
    assert settings.web_bind == "127.0.0.1"
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.store == "memory://"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_TOPIC_PARTITIONS", "3")
    monkeypatch.setenv("NUDGE_TOPIC_EMAIL", "shop.email")
    settings = load_settings()
    assert settings.topic_partitions == 3
    assert settings.inbound_topics()["email"] == "shop.email"


def test_every_topic_is_co_partitioned_and_fits_dead_letters() -> None:
    settings = Settings(topic_partitions=5)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert set(specs) == {
        "clickstream",
        "cart",
        "email",
        "customers",
        "events.deadletter",
        "profiles.outbound",
        "triggers.outbound",
        "triggers.holdout",
        "triggers.decisions",
        "nudge.training",
        "nudge.clock",
        "nudge-profiles-changelog",
        "nudge-deadlines-changelog",
        "nudge-labels-changelog",
        "nudge-model-snapshots-changelog",
    }
    assert specs.pop("nudge.training").partitions == 1
    assert specs.pop("nudge-model-snapshots-changelog").partitions == 1
    assert specs["nudge-profiles-changelog"].configs == {"cleanup.policy": "compact"}
    assert {spec.partitions for spec in specs.values()} == {5}
    inbound_limit = int(specs["cart"].configs["max.message.bytes"])
    deadletter_limit = int(specs["events.deadletter"].configs["max.message.bytes"])
    # A dead letter carries the whole inbound message as base64 plus its metadata.
    assert deadletter_limit > inbound_limit * 4 // 3
    assert inbound_limit > settings.max_event_bytes


def test_binding_beyond_loopback_requires_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_WEB_BIND", "0.0.0.0")  # noqa: S104 - the case under test
    with pytest.raises(InvalidSettingsError, match="NUDGE_API_TOKEN"):
        load_settings()
    monkeypatch.setenv("NUDGE_API_TOKEN", "t" * 32)
    assert load_settings().web_bind == "0.0.0.0"  # noqa: S104


def test_a_rejected_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_API_TOKEN", "hunter2")  # too short
    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()
    assert "NUDGE_API_TOKEN" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_business_time_zone_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_BUSINESS_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(InvalidSettingsError, match="NUDGE_BUSINESS_TIME_ZONE"):
        load_settings()
