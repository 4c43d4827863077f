"""Nudge over SASL and TLS, against a broker of this module that requires them.

The broker keeps its PLAINTEXT listener (its own readiness probe uses it)
and adds SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SSL with
client certificates required, and SASL_SSL, all on 127.0.0.1 with a CA made
for the test. Every client shape Nudge builds is checked against it:
kafka-python's admin client (topic creation) and producer (``nudge replay``
and ``nudge simulate``), and aiokafka as Faust drives it; then a whole
worker, whose log must hold neither the password, the API token nor an
email address it was sent; then a worker given a wrong password, which must
stop with a message that says why.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from schemas import TopicKind
from streams.kafka_security import broker_credentials, kafka_python_options
from streams.localkafka import (
    LocalKafka,
    SecureListeners,
    SecureProtocol,
    TlsFiles,
    free_ports,
    make_tls_files,
)
from streams.logs import REDACTED, RedactPersonalData
from streams.sending import KafkaSink
from streams.settings import Settings
from streams.topics import BrokerUnavailableError, TopicSpec, ensure_topics, topic_specs
from tests.support.events import BASE_TIME, encode, valid_event
from tests.support.kafka_io import wait_for
from tests.support.worker import WorkerEnv, running_worker, scrape

pytestmark = pytest.mark.integration

USER = "nudge"
PASSWORD = "pw-Zq8r5Lw2Kx"
KEY_PASSWORD = "key-pw-7Yt3"
TOKEN = "token-9f8e7d6c5b4a3210"
EMAIL = "ada.lovelace@example.com"


@dataclass(frozen=True)
class SecureBroker:
    listeners: SecureListeners
    tls: TlsFiles

    def variables(self, protocol: SecureProtocol, mechanism: str | None) -> dict[str, str]:
        """The ``NUDGE_KAFKA_*`` settings a client of ``protocol`` needs."""
        variables: dict[str, str] = {"NUDGE_KAFKA_SECURITY_PROTOCOL": protocol}
        if mechanism is not None:
            variables |= {
                "NUDGE_KAFKA_SASL_MECHANISM": mechanism,
                "NUDGE_KAFKA_SASL_USERNAME": USER,
                "NUDGE_KAFKA_SASL_PASSWORD": PASSWORD,
            }
        if protocol.endswith("SSL"):
            variables["NUDGE_KAFKA_SSL_CAFILE"] = str(self.tls.ca)
        if protocol == "SSL":  # this listener requires a client certificate
            variables |= {
                "NUDGE_KAFKA_SSL_CERTFILE": str(self.tls.client_certificate),
                "NUDGE_KAFKA_SSL_KEYFILE": str(self.tls.client_key),
                "NUDGE_KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
            }
        return variables


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A broker for this module only, stopped by its PID at the end."""
    root = tmp_path_factory.mktemp("secure-kafka")
    tls = make_tls_files(root / "tls", client_key_password=KEY_PASSWORD)
    port, controller_port, sasl, tls_port, sasl_tls = free_ports(5)
    listeners = SecureListeners(
        ports={"SASL_PLAINTEXT": sasl, "SSL": tls_port, "SASL_SSL": sasl_tls},
        users={USER: PASSWORD},
        keystore=tls.keystore,
        truststore=tls.ca,
    )
    broker = LocalKafka(
        root / "broker", port=port, controller_port=controller_port, secure=listeners
    )
    broker.start(timeout=180)
    try:
        yield SecureBroker(listeners, tls)
    finally:
        broker.stop()


def settings_from(variables: dict[str, str]) -> Settings:
    values: dict[str, Any] = {
        name.removeprefix("NUDGE_").lower(): value for name, value in variables.items()
    }
    return Settings(_env_file=None, **values)


async def read_one(bootstrap: str, topic: str, auth: dict[str, Any]) -> bytes | None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **auth
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    value: bytes | None = message.value
    return value


CASES: list[tuple[SecureProtocol, str | None]] = [
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SSL", None),
    ("SASL_SSL", "SCRAM-SHA-512"),
]


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_every_client_connects_as_settings_say(
    secure_broker: SecureBroker, protocol: SecureProtocol, mechanism: str | None
) -> None:
    env = WorkerEnv.fresh(secure_broker.listeners.bootstrap(protocol), partitions=2)
    settings = settings_from(env.variables() | secure_broker.variables(protocol, mechanism))

    # kafka-python's admin client, as the worker creates its topics.
    created = ensure_topics(
        settings.bootstrap_servers,
        topic_specs(settings),
        client_options=kafka_python_options(settings),
    )
    assert len(created) == len(topic_specs(settings))

    # kafka-python's producer, as nudge replay and nudge simulate publish.
    event = encode(valid_event(random.Random(1), "clickstream", "cust-1", BASE_TIME))
    sink = KafkaSink(settings)
    sink.send(TopicKind.clickstream, b"cust-1", event)
    sink.close()

    # aiokafka with exactly what Faust hands it.
    auth = dict(credentials_to_aiokafka_auth(broker_credentials(settings)))
    assert asyncio.run(read_one(settings.bootstrap_servers, settings.topic_clickstream, auth)) == (
        event
    )


def test_kafka_python_debug_output_is_scrubbed_of_the_password(
    secure_broker: SecureBroker,
) -> None:
    settings = settings_from(
        {"NUDGE_BOOTSTRAP_SERVERS": secure_broker.listeners.bootstrap("SASL_PLAINTEXT")}
        | secure_broker.variables("SASL_PLAINTEXT", "SCRAM-SHA-256")
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPersonalData(secrets=settings.secrets()))
    kafka_logger = logging.getLogger("kafka")
    level = kafka_logger.level
    kafka_logger.addHandler(handler)
    kafka_logger.setLevel(logging.DEBUG)
    try:
        spec = TopicSpec(f"debug-{os.getpid()}-{random.getrandbits(32):x}", 1, 1)
        ensure_topics(
            settings.bootstrap_servers, [spec], client_options=kafka_python_options(settings)
        )
    finally:
        kafka_logger.removeHandler(handler)
        kafka_logger.setLevel(level)
    output = stream.getvalue()
    # kafka-python prints its whole configuration at debug level.
    assert f"'sasl_plain_password': '{REDACTED}'" in output
    assert PASSWORD not in output


def get_profile(port: int, customer: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/customers/{customer}")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def deadlettered(port: int) -> bool:
    return any(
        line.startswith("nudge_events_deadlettered_total{") and not line.endswith(" 0.0")
        for line in scrape(port).splitlines()
    )


def test_a_worker_runs_over_sasl_and_tls_and_logs_no_secret_nor_email(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    env = WorkerEnv.fresh(secure_broker.listeners.bootstrap("SASL_SSL"), partitions=2)
    security = secure_broker.variables("SASL_SSL", "SCRAM-SHA-512")
    extra = security | {"NUDGE_API_TOKEN": TOKEN, "NUDGE_LOG_FORMAT": "json"}
    settings = settings_from(env.variables() | security)
    customer = "cust-secure-1"
    # Producers add fields Nudge ignores, an email address among them; a
    # broken message carrying one is dead-lettered, and the log says so.
    event = valid_event(random.Random(2), "customers", customer, BASE_TIME)
    valid = encode(event | {"email": EMAIL})
    broken = b'{"type": "consent_changed", "email": "' + EMAIL.encode() + b'", '

    log_path = tmp_path / "worker.log"
    with running_worker(env, log_path, extra=extra) as worker:
        sink = KafkaSink(settings)
        sink.send(TopicKind.customers, customer.encode(), valid)
        sink.send(TopicKind.customers, customer.encode(), broken)
        sink.close()
        _, profile = wait_for(
            lambda: (answer := get_profile(env.web_port, customer))[0] == 200 and answer,
            timeout=90,
            what="the profile API to answer for the customer",
        )
        assert profile["customer_id"] == customer
        wait_for(lambda: deadlettered(env.web_port), timeout=60, what="the dead letter")
        assert worker.poll() is None

    log = log_path.read_text()
    assert f"Authenticated as {USER} via SCRAM-SHA-512" in log  # aiokafka, under Faust
    assert "dead-lettered" in log
    for secret in (PASSWORD, TOKEN, EMAIL):
        assert secret not in log


def test_a_wrong_password_stops_the_worker_saying_why(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    env = WorkerEnv.fresh(secure_broker.listeners.bootstrap("SASL_PLAINTEXT"), partitions=2)
    wrong = "not-the-password-42"
    variables = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    variables |= env.variables() | secure_broker.variables("SASL_PLAINTEXT", "SCRAM-SHA-256")
    variables["NUDGE_KAFKA_SASL_PASSWORD"] = wrong
    result = subprocess.run(
        [str(Path(sys.executable).with_name("nudge")), "worker", "-l", "info"],
        env=variables,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "Nudge cannot start: could not connect to Kafka at "
        f"{env.bootstrap} (NUDGE_BOOTSTRAP_SERVERS) with NUDGE_KAFKA_SECURITY_PROTOCOL="
        f"SASL_PLAINTEXT, NUDGE_KAFKA_SASL_MECHANISM=SCRAM-SHA-256, "
        f"NUDGE_KAFKA_SASL_USERNAME={USER}: "
    ) in result.stderr
    assert "invalid credentials" in result.stderr
    assert wrong not in output


@pytest.mark.parametrize(
    ("protocol", "change", "reason"),
    [
        ("SASL_PLAINTEXT", {"NUDGE_KAFKA_SASL_USERNAME": "nobody"}, "invalid credentials"),
        (
            "SASL_PLAINTEXT",
            {"NUDGE_KAFKA_SASL_MECHANISM": "PLAIN", "NUDGE_KAFKA_SASL_PASSWORD": "x"},
            "Invalid username or password",
        ),
        # Without the test CA, the system's CAs do not vouch for the broker.
        ("SASL_SSL", {"NUDGE_KAFKA_SSL_CAFILE": ""}, "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_a_refusal_is_reported_at_once(
    secure_broker: SecureBroker, protocol: SecureProtocol, change: dict[str, str], reason: str
) -> None:
    variables = secure_broker.variables(protocol, "SCRAM-SHA-512") | change
    settings = settings_from(
        {"NUDGE_BOOTSTRAP_SERVERS": secure_broker.listeners.bootstrap(protocol)}
        | {name: value for name, value in variables.items() if value}
    )
    began = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=reason) as raised:
        ensure_topics(
            settings.bootstrap_servers,
            topic_specs(settings),
            client_options=kafka_python_options(settings),
        )
    assert time.monotonic() - began < 10  # not kafka-python's 30 s of retries
    assert PASSWORD not in str(raised.value)
