"""Settings to Kafka clients: the same SASL and TLS for kafka-python and for Faust (aiokafka).

Certificates are made with ``openssl`` once per module. What a real broker
says to these options is tested in tests/integration/test_kafka_security.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_security import broker_credentials, kafka_python_options, ssl_context
from streams.localkafka import TlsFiles, make_tls_files
from streams.settings import InvalidSettingsError, Settings

PASSWORD = "pw-Zq8r5Lw2Kx"
KEY_PASSWORD = "key-pw-7Yt3"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"), client_key_password=KEY_PASSWORD)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def sasl(
    protocol: str = "SASL_PLAINTEXT", mechanism: str = "SCRAM-SHA-256", **values: Any
) -> Settings:
    return settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="nudge",
        kafka_sasl_password=PASSWORD,
        **values,
    )


def mutual_tls(tls: TlsFiles, password: str = KEY_PASSWORD) -> Settings:
    return settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tls.ca,
        kafka_ssl_certfile=tls.client_certificate,
        kafka_ssl_keyfile=tls.client_key,
        kafka_ssl_key_password=password,
    )


@pytest.mark.unit
def test_plaintext_adds_nothing_but_the_protocol() -> None:
    assert kafka_python_options(settings()) == {"security_protocol": "PLAINTEXT"}
    assert ssl_context(settings()) is None


@pytest.mark.unit
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_options_carry_mechanism_and_credentials(mechanism: str) -> None:
    assert kafka_python_options(sasl(mechanism=mechanism)) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "nudge",
        "sasl_plain_password": PASSWORD,
    }


@pytest.mark.unit
def test_tls_verifies_the_broker_and_its_host_name(tls: TlsFiles) -> None:
    options = kafka_python_options(sasl("SASL_SSL", kafka_ssl_cafile=tls.ca))
    context = options.pop("ssl_context")
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert any("nudge-test-ca" in str(ca["subject"]) for ca in context.get_ca_certs())


@pytest.mark.unit
def test_without_a_ca_file_the_system_cas_are_trusted() -> None:
    context = ssl_context(settings(kafka_security_protocol="SSL"))
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED


@pytest.mark.unit
def test_a_client_certificate_loads_with_its_key_password(tls: TlsFiles) -> None:
    assert ssl_context(mutual_tls(tls)) is not None


@pytest.mark.unit
def test_a_wrong_key_password_stops_start_up_naming_the_settings(tls: TlsFiles) -> None:
    with pytest.raises(InvalidSettingsError) as raised:
        ssl_context(mutual_tls(tls, password="not-the-key-password"))
    message = str(raised.value)
    assert "NUDGE_KAFKA_SSL_CERTFILE" in message
    assert "NUDGE_KAFKA_SSL_KEY_PASSWORD" in message
    assert "not-the-key-password" not in message


@pytest.mark.unit
def test_a_ca_file_that_is_not_pem_stops_start_up(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("this is not a certificate\n")
    with pytest.raises(InvalidSettingsError, match="NUDGE_KAFKA_SSL_CAFILE holds no usable"):
        ssl_context(settings(kafka_security_protocol="SSL", kafka_ssl_cafile=garbage))


# Faust's side: these import Faust, so they are agents tests, not unit tests.


@pytest.mark.agents
def test_faust_gets_no_credentials_for_plaintext() -> None:
    assert broker_credentials(settings()) is None


@pytest.mark.agents
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_hands_aiokafka_the_same_sasl_settings(protocol: str, tls: TlsFiles) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    given = sasl(
        protocol,
        "SCRAM-SHA-512",
        **({"kafka_ssl_cafile": tls.ca} if protocol == "SASL_SSL" else {}),
    )
    credentials = broker_credentials(given)
    auth = dict(credentials_to_aiokafka_auth(credentials))
    context = auth.pop("ssl_context")
    assert auth == {
        "security_protocol": protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "nudge",
        "sasl_plain_password": PASSWORD,
    }
    assert (context is not None) == (protocol == "SASL_SSL")
    assert PASSWORD not in repr(credentials)


@pytest.mark.agents
def test_faust_gets_the_tls_context_for_ssl(tls: TlsFiles) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    auth = credentials_to_aiokafka_auth(broker_credentials(mutual_tls(tls)))
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"].verify_mode is ssl.CERT_REQUIRED


@pytest.mark.agents
def test_the_options_given_to_faust_show_no_secret_and_bind_loopback() -> None:
    from streams.app import faust_options

    options = faust_options(sasl(api_token="token-9f8e7d6c5b4a3210"))
    assert options["broker_credentials"] is not None
    assert options["web_bind"] == "127.0.0.1"
    assert options["web_tables_enabled"] is False
    assert PASSWORD not in repr(options)
    assert "token-9f8e7d6c5b4a3210" not in repr(options)
