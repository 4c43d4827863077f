"""Fixtures shared by every test tier; the broker ones start Kafka once per session.

Where the broker comes from, first match wins:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: use that broker (the suite starts nothing).
2. A Docker engine answers: run ``apache/kafka`` (KRaft) with testcontainers.
3. Otherwise: :class:`streams.localkafka.LocalKafka` on free loopback ports with
   a temporary data directory (needs a JDK 17+ and Maven; jars are cached).

A broker that cannot be started fails the tests that asked for it, in CI and
on a developer machine alike: integration tests never skip.
"""

from __future__ import annotations

import gc
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from streams.localkafka import LocalKafka, LocalKafkaError, broker_ready, free_port

# kafka-python 3.0 loads its protocol schemas with a deprecated importlib API
# at import time; import it once here so no test module trips over the warning.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient

KAFKA_IMAGE = "apache/kafka:4.1.1"
BROKER_START_TIMEOUT = 180.0


def _docker_engine_answers() -> bool:
    """Whether a Docker engine answers a ping within a few seconds (never raises)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    with warnings.catch_warnings():
        # docker-py leaves its socket unclosed when the engine does not answer;
        # collect it here, where its ResourceWarning is not an error.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            answered = _ping_docker()
        except Exception:
            answered = False
        gc.collect()
    return answered


def _ping_docker() -> bool:
    import docker  # no type stubs; only probed here

    # A fixed API version: the default ("auto") connects inside the constructor.
    client = docker.from_env(timeout=3, version="1.41")
    try:
        return bool(client.ping())
    finally:
        client.close()


def _start_container() -> tuple[Any, str]:
    """Start ``apache/kafka`` in KRaft mode, published on 127.0.0.1 only.

    testcontainers' ``KafkaContainer`` drives Confluent's image through its
    start-up scripts and cannot run ``apache/kafka``, so this configures the
    official image directly through its ``KAFKA_*`` variables. The host port
    equals the container port, so the advertised address is right on both sides.
    """
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = DockerContainer(KAFKA_IMAGE)
    container.with_envs(
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        # 0.0.0.0 inside the container only, so Docker can forward to it; the
        # host side is published on 127.0.0.1 below.
        KAFKA_LISTENERS=f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://127.0.0.1:9093",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_CONTROLLER_QUORUM_VOTERS="1@127.0.0.1:9093",
        KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS="4",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
        KAFKA_MESSAGE_MAX_BYTES=str(8 * 1024 * 1024),
    )
    # docker-py takes (host_ip, host_port) to publish on loopback only;
    # testcontainers' with_bind_ports would publish on every interface.
    container.ports[f"{port}/tcp"] = ("127.0.0.1", port)  # type: ignore[assignment]
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + BROKER_START_TIMEOUT
    try:
        container.start()
        while not broker_ready(bootstrap):
            if time.monotonic() > deadline:
                logs = container.get_wrapped_container().logs(tail=30).decode(errors="replace")
                raise TimeoutError(f"{KAFKA_IMAGE} did not answer on {bootstrap}:\n{logs}")
            time.sleep(0.5)
    except BaseException:
        container.stop()
        raise
    return container, bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of the session's Kafka broker, started on first use, stopped at the end."""
    external = _external_bootstrap()
    if external:
        yield external
        return

    problems: list[str] = []
    if _docker_engine_answers():
        try:
            container, bootstrap = _start_container()
        except Exception as exc:
            problems.append(f"Docker ({KAFKA_IMAGE}): {exc}")
        else:
            try:
                yield bootstrap
            finally:
                container.stop()
            return

    broker = LocalKafka.ephemeral(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start(timeout=BROKER_START_TIMEOUT)
    except LocalKafkaError as exc:
        problems.append(f"local broker (streams/localkafka.py): {exc}")
        pytest.fail(
            "no Kafka broker for the integration tests. Install a JDK 17+ and Maven, run "
            "Docker, or point KAFKA_BOOTSTRAP_SERVERS at a broker.\n" + "\n".join(problems),
            pytrace=False,
        )
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def _external_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[Any]:
    """One kafka-python ``KafkaAdminClient`` for the session's broker, closed at the end."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="nudge-tests")
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make names no other test (or earlier run on the same broker) uses.

    ``unique_name("orders")`` gives ``orders-<test name>-<10 hex>``; the test
    name in it tells which test left a topic or group behind.
    """
    test = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:80].strip("-")

    def make(prefix: str) -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def create_topic(kafka_admin: Any, unique_name: Callable[[str], str]) -> Callable[..., str]:
    """Create a uniquely named topic and return its name, once its metadata is visible.

    ``create_topic(partitions=3, configs={"max.message.bytes": "4194304"},
    prefix="cart")``. The broker does not auto-create topics, as in
    production: a test creates every topic it uses.
    """

    def make(
        partitions: int = 1,
        *,
        configs: Mapping[str, str] | None = None,
        prefix: str = "topic",
    ) -> str:
        name = unique_name(prefix)
        spec = {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}
        kafka_admin.create_topics({name: spec}, wait_for_metadata=True)
        return name

    return make
