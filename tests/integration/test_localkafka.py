"""The local broker works as Kafka, and LocalKafka starts, reports and stops it by PID."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import MessageSizeTooLargeError

from streams.localkafka import (
    LocalKafka,
    LocalKafkaError,
    broker_ready,
    default_cache_dir,
    free_ports,
    run_command,
)
from tests.support.sockets import listening_sockets

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def read_back(bootstrap: str, topic: str, expected: int, *, timeout: float = 30.0) -> list[Any]:
    """Read ``expected`` records from every partition of ``topic`` (no consumer group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * MiB,
        fetch_max_bytes=16 * MiB,
    )
    try:
        numbers = sorted(consumer.partitions_for_topic(topic))
        partitions = [TopicPartition(topic, n) for n in numbers]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_three_partitions_keep_each_key_in_order(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic(3, prefix="orders")
    customers = [f"customer-{n}" for n in range(30)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    try:
        futures = [
            producer.send(topic, key=customer.encode(), value=f"{customer}:{seq}".encode())
            for seq in range(3)
            for customer in customers
        ]
        producer.flush()
        acked = [future.get(timeout=30) for future in futures]
    finally:
        producer.close()
    assert {meta.partition for meta in acked} == {0, 1, 2}

    records = read_back(kafka_bootstrap, topic, len(futures))
    assert len(records) == len(futures)
    by_key: dict[bytes, list[tuple[int, int, bytes]]] = defaultdict(list)
    for record in records:
        by_key[record.key].append((record.partition, record.offset, record.value))
    for customer in customers:
        seen = sorted(by_key[customer.encode()], key=lambda r: r[1])
        assert len({partition for partition, _, _ in seen}) == 1, "a key stays on one partition"
        assert [value for _, _, value in seen] == [f"{customer}:{s}".encode() for s in range(3)]


def test_topic_with_larger_max_message_bytes_takes_a_dead_letter_sized_message(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic(1, configs={"max.message.bytes": str(4 * MiB)}, prefix="deadletter")
    payload = os.urandom(3 * MiB // 2)  # random: compression cannot shrink it under a limit
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=6 * MiB)
    try:
        producer.send(topic, key=b"customer-1", value=payload).get(timeout=30)
        with pytest.raises(MessageSizeTooLargeError):
            # Over the topic's own limit: the broker refuses it, the setting is real.
            producer.send(topic, key=b"customer-1", value=os.urandom(5 * MiB)).get(timeout=30)
    finally:
        producer.close()

    (record,) = read_back(kafka_bootstrap, topic, 1)
    assert hashlib.sha256(record.value).digest() == hashlib.sha256(payload).digest()


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A LocalKafka of this module's own, beside the session broker."""
    broker = LocalKafka.ephemeral(tmp_path_factory.mktemp("own-kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_status_finds_the_running_broker_from_its_pid_file(own_broker: LocalKafka) -> None:
    status = own_broker.status()
    assert status.running
    assert status.pid is not None
    assert status.bootstrap_servers == f"127.0.0.1:{own_broker.port}"
    assert own_broker.pid_file.read_text().strip() == str(status.pid)
    assert broker_ready(own_broker.bootstrap_servers)

    # Another process (here: another object) finds it through the data directory alone.
    stranger = LocalKafka(
        own_broker.data_dir,
        port=own_broker.port,
        controller_port=own_broker.controller_port,
        cache_dir=own_broker.cache_dir,
    )
    assert stranger.status().pid == status.pid
    with pytest.raises(LocalKafkaError, match="already running"):
        stranger.start()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_broker_listens_on_loopback_only(own_broker: LocalKafka) -> None:
    pid = own_broker.status().pid
    assert pid is not None
    assert listening_sockets(pid) == {
        ("127.0.0.1", own_broker.port),
        ("127.0.0.1", own_broker.controller_port),
    }


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_with_free_successor() -> int:
    for _ in range(100):
        (port,) = free_ports(1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("found no two adjacent free ports")


def test_commands_start_report_and_stop_by_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, data_dir = default_cache_dir(), tmp_path / "kafka-data"
    port = port_with_free_successor()  # the command puts the controller on port + 1

    def run(action: Literal["start", "stop", "status"]) -> tuple[int, str]:
        code = run_command(action, home=home, data_dir=data_dir, port=port)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    assert run("status") == (0, f"Kafka is not running (data in {data_dir}).\n")
    code, out = run("start")
    assert code == 0, out
    assert out.startswith(f"Kafka 4.1.1 started at 127.0.0.1:{port} (pid ")
    pid = int((data_dir / "broker.pid").read_text())
    try:
        assert run("start") == (0, f"Kafka is already running at 127.0.0.1:{port} (pid {pid}).\n")
        assert run("status") == (0, f"Kafka is running at 127.0.0.1:{port} (pid {pid}).\n")
    finally:
        assert run("stop") == (0, f"Kafka stopped (pid {pid}).\n")

    assert not pid_exists(pid)
    assert not (data_dir / "broker.pid").exists()
    assert not port_open(port)
    assert not port_open(port + 1)
    assert run("stop") == (0, "Kafka is not running; nothing to stop.\n")
    assert run("status")[1].startswith("Kafka is not running")
