"""Create Nudge's topics up front and refuse to run on mismatched ones.

Faust only declares its own internal topics. Inbound, dead-letter and
outbound topics must exist with the same partition count as the table
changelogs, or Faust crash-loops with ``PartitionsMismatch``; so the worker
creates what is missing before it subscribes and stops with a clear message
when an existing topic disagrees.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError

from streams.kafka_security import refusal
from streams.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    """One topic as Nudge needs it."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


_TOPIC_ALREADY_EXISTS = 36
"""Kafka's error code when a concurrent request created the topic first."""


class TopicMismatchError(SystemExit):
    """An existing topic cannot serve Nudge as it is; the message says why."""


class BrokerUnavailableError(SystemExit):
    """No broker answered at start-up; the message names the setting to check."""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic a worker reads or writes, co-partitioned."""
    inbound = {"max.message.bytes": str(settings.inbound_max_message_bytes)}
    deadletter = {"max.message.bytes": str(settings.deadletter_max_message_bytes)}
    specs = [
        TopicSpec(name, settings.topic_partitions, settings.topic_replication_factor, inbound)
        for name in settings.consumed_topics().values()
    ]
    specs.append(
        TopicSpec(
            settings.topic_deadletter,
            settings.topic_partitions,
            settings.topic_replication_factor,
            deadletter,
        )
    )
    replicas = settings.topic_replication_factor
    for role, name in settings.outbound_topics().items():
        # One training partition: one trainer sees every example, once.
        partitions = 1 if role == "training" else settings.topic_partitions
        specs.append(TopicSpec(name, partitions, replicas))
    # The tables' changelogs too: Faust creates a missing one just before it
    # subscribes, and on a busy broker the metadata may not list it yet; a
    # table written then fails ("changelog topic has 0 partitions") until the
    # consumer re-reads metadata minutes later.
    compacted = {"cleanup.policy": "compact"}
    for table, fixed in CHANGELOGS.items():
        name = f"{settings.app_id}-{table}-changelog"
        count = settings.topic_partitions if fixed is None else fixed
        specs.append(TopicSpec(name, count, replicas, compacted))
    return specs


CHANGELOGS: dict[str, int | None] = {
    "profiles": None,
    "deadlines": None,
    "labels": None,
    "model-snapshots": 1,
}
"""Each table of the worker and its changelog's partition count (None: co-partitioned)."""


def _admin_client(bootstrap_servers: str, options: Mapping[str, Any]) -> Any:
    # kafka.admin warns on import under Python 3.11 about its own internals.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="nudge-topics", **options
    )


def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    *,
    client_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the missing topics; return their names. Raise on a partition mismatch.

    Several workers starting together race to create the same topics; a
    topic another worker created first is checked like any existing one.
    ``client_options`` are kafka-python's security arguments
    (:func:`streams.kafka_security.kafka_python_options`).
    """
    wanted = {spec.name: spec for spec in specs}
    options = client_options or {}
    refused = refusal(bootstrap_servers, options)
    if refused is not None:
        raise BrokerUnavailableError(_unreachable(bootstrap_servers, options, refused))
    try:
        admin = _admin_client(bootstrap_servers, options)
    except KafkaError as exc:
        raise BrokerUnavailableError(_unreachable(bootstrap_servers, options, str(exc))) from None
    try:
        created: list[str] = []
        for _ in range(2):  # the second pass checks what other workers created
            missing = _missing(admin, wanted)
            if not missing:
                break
            created += _create(admin, missing)
        return created
    finally:
        admin.close()


def _unreachable(bootstrap_servers: str, options: Mapping[str, Any], reason: str) -> str:
    """Say which settings a failed connection used, and why it failed (never a password)."""
    protocol = options.get("security_protocol", "PLAINTEXT")
    used = f"NUDGE_KAFKA_SECURITY_PROTOCOL={protocol}"
    if "sasl_mechanism" in options:
        used += (
            f", NUDGE_KAFKA_SASL_MECHANISM={options['sasl_mechanism']}, "
            f"NUDGE_KAFKA_SASL_USERNAME={options['sasl_plain_username']}"
        )
    return (
        f"Nudge cannot start: could not connect to Kafka at {bootstrap_servers} "
        f"(NUDGE_BOOTSTRAP_SERVERS) with {used}: {reason}"
    )


def _missing(admin: Any, wanted: dict[str, TopicSpec]) -> list[TopicSpec]:
    existing = {
        topic["name"]: len(topic["partitions"])
        for topic in admin.describe_topics(list(wanted))
        if topic.get("error_code", 0) == 0
    }
    mismatched = [
        f"{name} has {existing[name]} partitions, Nudge needs {spec.partitions}"
        for name, spec in wanted.items()
        if name in existing and existing[name] != spec.partitions
    ]
    if mismatched:
        raise TopicMismatchError(
            "Nudge cannot start: existing topics do not have the partitions Nudge needs "
            "(NUDGE_TOPIC_PARTITIONS, co-partitioned by customer_id): " + "; ".join(mismatched)
        )
    return [spec for name, spec in wanted.items() if name not in existing]


def _create(admin: Any, missing: list[TopicSpec]) -> list[str]:
    """Create ``missing``; return the names this call created (not those it lost a race for)."""
    answer = admin.create_topics(
        {
            spec.name: {
                "num_partitions": spec.partitions,
                "replication_factor": spec.replication_factor,
                "configs": spec.configs,
            }
            for spec in missing
        },
        raise_errors=False,
        wait_for_metadata=True,
    )
    created = []
    for topic in answer["topics"]:
        code = topic.get("error_code", 0)
        if code == 0:
            created.append(topic["name"])
        elif code != _TOPIC_ALREADY_EXISTS:
            raise KafkaError(f"creating {topic['name']}: {topic.get('error_message') or code}")
    return created
