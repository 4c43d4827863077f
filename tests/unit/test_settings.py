import io
import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streams.logs import REDACTED, RedactPersonalData, logging_config
from streams.settings import SECRET_FIELDS, InvalidSettingsError, Settings, load_settings
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
        ("NUDGE_STALL_SECONDS", "0", "NUDGE_STALL_SECONDS"),
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
        "nudge.replay",
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


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_binds_need_no_token(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("NUDGE_WEB_BIND", host)
    assert load_settings().web_bind == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "nudge-0.internal"])  # noqa: S104
def test_every_other_bind_needs_a_token(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("NUDGE_WEB_BIND", host)
    with pytest.raises(InvalidSettingsError, match=f"NUDGE_WEB_BIND={host} exposes"):
        load_settings()


# Kafka security settings: incomplete or contradictory ones stop start-up by name.

PASSWORD = "pw-Zq8r5Lw2Kx"
TOKEN = "token-9f8e7d6c5b4a3210"


def sasl(mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {
        "NUDGE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "NUDGE_KAFKA_SASL_MECHANISM": mechanism,
        "NUDGE_KAFKA_SASL_USERNAME": "nudge",
        "NUDGE_KAFKA_SASL_PASSWORD": PASSWORD,
    }


def refused(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert PASSWORD not in message
    return message


def test_plaintext_is_the_default() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_password is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_are_read(monkeypatch: pytest.MonkeyPatch, mechanism: str) -> None:
    for name, value in sasl(mechanism).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.kafka_sasl_mechanism == mechanism
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD


@pytest.mark.parametrize("missing", ["NUDGE_KAFKA_SASL_USERNAME", "NUDGE_KAFKA_SASL_PASSWORD"])
def test_sasl_needs_a_username_and_a_password(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    variables = sasl()
    del variables[missing]
    message = refused(monkeypatch, variables)
    assert f"authenticates with SASL: set {missing}" in message


def test_credentials_without_sasl_are_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = sasl() | {"NUDGE_KAFKA_SECURITY_PROTOCOL": "SSL"}
    message = refused(monkeypatch, variables)
    assert "NUDGE_KAFKA_SASL_USERNAME and NUDGE_KAFKA_SASL_PASSWORD would be ignored" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NUDGE_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("NUDGE_KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("NUDGE_KAFKA_SASL_USERNAME", ""),
    ],
)
def test_a_bad_kafka_value_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    assert variable in refused(monkeypatch, sasl() | {variable: value})


@pytest.mark.parametrize(
    "variable", ["NUDGE_KAFKA_SSL_CAFILE", "NUDGE_KAFKA_SSL_CERTFILE", "NUDGE_KAFKA_SSL_KEYFILE"]
)
def test_a_tls_file_must_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    absent = tmp_path / "nowhere.pem"
    message = refused(monkeypatch, {"NUDGE_KAFKA_SECURITY_PROTOCOL": "SSL", variable: str(absent)})
    assert f"{variable}: Path does not point to a file" in message
    assert str(absent) in message


def test_tls_files_without_tls_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    message = refused(monkeypatch, sasl() | {"NUDGE_KAFKA_SSL_CAFILE": str(ca)})
    assert (
        "NUDGE_KAFKA_SSL_CAFILE would be ignored with NUDGE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"
        in message
    )


def test_a_client_key_needs_its_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "client.key"
    key.write_text("not checked here")
    variables = {
        "NUDGE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "NUDGE_KAFKA_SSL_KEYFILE": str(key),
        "NUDGE_KAFKA_SSL_KEY_PASSWORD": PASSWORD,
    }
    assert "set NUDGE_KAFKA_SSL_CERTFILE" in refused(monkeypatch, variables)


# Settings never echo a secret: not when printed, dumped, nor when rejected.


def test_printed_or_dumped_settings_show_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sasl().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NUDGE_API_TOKEN", TOKEN)
    settings = load_settings()
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        str(settings.secrets()),
    ]
    for text in shown:
        assert PASSWORD not in text
        assert TOKEN not in text
    assert {secret.get_secret_value() for secret in settings.secrets()} == {PASSWORD, TOKEN}


def test_a_validation_error_shows_no_secret() -> None:
    # Built directly, as a library user would: pydantic's own message.
    with pytest.raises(ValidationError) as raised:
        Settings(api_token="short-secret", kafka_sasl_password=PASSWORD, web_port=0)
    assert "short-secret" not in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_every_secret_field_is_a_secret_type() -> None:
    for name in SECRET_FIELDS:
        assert "SecretStr" in str(Settings.model_fields[name].annotation), name


def test_a_secret_next_to_other_mistakes_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(
        monkeypatch,
        sasl()
        | {
            "NUDGE_KAFKA_SASL_MECHANISM": "MD5",
            "NUDGE_API_TOKEN": "too-short",
            "NUDGE_WEB_PORT": "0",
        },
    )
    assert "NUDGE_KAFKA_SASL_MECHANISM" in message
    assert "NUDGE_API_TOKEN" in message
    assert "too-short" not in message


def test_log_filter_scrubs_the_secrets_it_is_given() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPersonalData(secrets=[SecretStr(PASSWORD), SecretStr(TOKEN)]))
    logger = logging.getLogger("nudge.test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        # As kafka-python logs its configuration at debug level.
        logger.warning("Starting with configuration: %s", {"sasl_plain_password": PASSWORD})
        logger.warning("token %s for ada@example.com", TOKEN, extra={"header": f"Bearer {TOKEN}"})
        try:
            raise ValueError(f"bad password {PASSWORD}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert PASSWORD not in output
    assert TOKEN not in output
    assert "ada@example.com" not in output
    assert output.count(REDACTED) >= 4


def test_the_logging_config_carries_secrets_without_showing_them() -> None:
    secret = SecretStr(PASSWORD)
    config = logging_config("json", secrets=[secret])
    assert config["filters"]["personal_data"]["secrets"] == (secret,)
    assert PASSWORD not in repr(config)


def test_a_stall_period_must_outlast_two_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_COMMIT_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("NUDGE_STALL_SECONDS", "9")
    with pytest.raises(InvalidSettingsError, match="stall_seconds"):
        load_settings()
    monkeypatch.setenv("NUDGE_STALL_SECONDS", "10")
    assert load_settings().stall_seconds == 10
