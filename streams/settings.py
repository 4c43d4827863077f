"""Every knob Nudge has, read once from ``NUDGE_*`` environment variables.

One pydantic-settings class is the only place the environment is read
(``streams.app`` builds everything from an instance of it), so a setting has
exactly one name, one type and one default, and a bad value stops start-up
with a message that names the variable instead of failing later, deep inside
a consumer.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import DecodeLimits

ENV_PREFIX = "NUDGE_"

SECRET_FIELDS = frozenset({"api_token", "kafka_sasl_password", "kafka_ssl_key_password"})
"""Settings whose values never appear in an error message or a log line."""

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]


class InvalidSettingsError(SystemExit):
    """A setting is wrong; raised before anything connects to Kafka.

    A ``SystemExit`` subclass so the CLI prints the message and exits non-zero
    without a traceback, while tests can still catch it by type.
    """


class Settings(BaseSettings):
    """Nudge's settings; each field is the variable ``NUDGE_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        # A rejected value may be a secret; describe_errors decides what to show.
        hide_input_in_errors=True,
    )

    app_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")] = (
        "nudge"
    )
    """Consumer group and prefix of every internal topic (changelogs)."""

    bootstrap_servers: Annotated[str, Field(min_length=1)] = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list of Kafka brokers."""

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """How every Kafka client connects: TLS (``SSL``), SASL, both, or neither."""

    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    """SASL mechanism; SCRAM never sends the password, PLAIN needs TLS to hide it."""

    kafka_sasl_username: Annotated[str, Field(min_length=1)] | None = None
    kafka_sasl_password: Annotated[SecretStr, Field(min_length=1)] | None = None
    kafka_ssl_cafile: FilePath | None = None
    """PEM CA certificates to verify the brokers by; default: the system's CAs."""

    kafka_ssl_certfile: FilePath | None = None
    """PEM client certificate, for brokers that require one (mutual TLS)."""

    kafka_ssl_keyfile: FilePath | None = None
    """PEM private key of the client certificate, if not inside the certificate file."""

    kafka_ssl_key_password: SecretStr | None = None
    """Password of an encrypted private key."""

    topic_clickstream: TopicName = "clickstream"
    topic_cart: TopicName = "cart"
    topic_email: TopicName = "email"
    topic_customers: TopicName = "customers"
    topic_deadletter: TopicName = "events.deadletter"
    topic_profiles: TopicName = "profiles.outbound"
    """Segment and score changes, for syncing the ESP's audiences."""

    topic_triggers: TopicName = "triggers.outbound"
    """Sendable triggers: what the ESP connector turns into emails."""

    topic_holdout: TopicName = "triggers.holdout"
    """Triggers of the control group: recorded, never sent."""

    topic_decisions: TopicName = "triggers.decisions"
    """Every decision (sent, suppressed and why, capped, holdout, deferred)."""

    topic_training: TopicName = "nudge.training"
    """Labelled examples; one partition, so one trainer sees each example once."""

    topic_replay: TopicName = "nudge.replay"
    """Events of every kind, for backfills: ``nudge replay --ordered`` publishes a file
    here so each partition's events are applied in the file's order (the four
    inbound topics are read side by side, not merged by event time)."""

    topic_clock: TopicName = "nudge.clock"
    """Wall-clock ticks per partition, so deadlines fire on quiet partitions."""

    topic_partitions: Annotated[int, Field(ge=1, le=10_000)] = 8
    """Partition count of every co-partitioned topic (inbound, tables, outbound)."""

    topic_replication_factor: Annotated[int, Field(ge=1, le=32)] = 1
    create_topics: bool = True
    """Create missing topics at start-up; existing ones must already match."""

    store: str = "memory://"
    """Table store: ``memory://`` (replays the changelog on start) or ``rocksdb://``."""

    data_dir: Path = Path(".cache/nudge-data")
    """Where table stores (rocksdb) keep their files."""

    web_bind: str = "127.0.0.1"
    """Address the web server (metrics, profile API) listens on."""

    web_port: Annotated[int, Field(ge=1, le=65_535)] = 6066
    web_advertised_host: str | None = None
    """Host other workers use to reach this one (profile API routing); default web_bind."""

    api_token: Annotated[SecretStr, Field(min_length=16)] | None = None
    """Bearer token the profile API requires; mandatory when web_bind is not loopback."""

    business_time_zone: str = "UTC"
    """IANA zone whose calendar days count as purchase days (RFM, CLV summaries)."""

    dedupe_window: Annotated[int, Field(ge=1, le=4_096)] = 64
    """Distinct recent event ids kept per customer to drop redelivered events."""

    wall_clock: bool = True
    """Let wall time push deadlines on quiet partitions; false to replay history."""

    clock_tick_seconds: Annotated[float, Field(gt=0, le=3_600)] = 5.0

    browse_wait_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 60.0
    cart_wait_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 60.0
    cart_min_value: Annotated[float, Field(ge=0)] = 0.0
    high_intent_threshold: Annotated[float, Field(ge=0, le=1)] = 0.8
    tier_vip_above: Annotated[float, Field(ge=0, le=1)] = 0.8
    tier_discount_from: Annotated[float, Field(ge=0, le=1)] = 0.4

    cap_count: Annotated[int, Field(ge=1, le=100)] = 1
    cap_window_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 16.0
    """At most cap_count triggers per customer per rolling window, all types together."""

    require_granted_consent: bool = True
    """Send only to customers whose email consent is granted (not merely unknown)."""

    holdout_share: Annotated[float, Field(ge=0, le=0.5)] = 0.05
    experiment_salt: Annotated[str, Field(min_length=1, max_length=100)] = "nudge-holdout-1"
    """Hashed with the customer id into the control group; change it to redraw the group."""

    min_positives: Annotated[int, Field(ge=0)] = 500
    """Labelled positives a model learns before its scores replace the RFM prior."""

    profile_cache_customers: Annotated[int, Field(ge=0, le=10_000_000)] = 20_000
    """Customers whose profile a worker keeps decoded (about 9 KB each); the rest stay bytes."""

    train_in_worker: bool = True
    """Learn in the worker that owns the training partition. False: every worker
    leaves learning to a ``nudge trainer`` process (consumer group
    ``<app id>-trainer``), so learning never takes ingestion's CPU."""

    snapshot_every_examples: Annotated[int, Field(ge=1)] = 1_000
    snapshot_every_seconds: Annotated[float, Field(gt=0)] = 60.0

    max_event_bytes: Annotated[int, Field(ge=1_024, le=4 * 1024 * 1024)] = 256 * 1024
    """Inbound messages larger than this are dead-lettered unparsed."""

    max_future_skew_seconds: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    """How far ahead of the worker's clock an ``occurred_at`` may be."""

    allowed_lateness_seconds: Annotated[float, Field(ge=0, le=7 * 86_400)] = 300.0
    """Watermark lag behind the newest event time seen on a partition."""

    consumer_session_timeout_seconds: Annotated[float, Field(ge=1, le=3_600)] = 30.0
    """How long the group waits for a silent worker before moving its partitions."""

    commit_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 2.8
    stall_seconds: Annotated[float, Field(ge=1, le=3_600)] = 60.0
    """How long an inbound partition with messages waiting may go without a commit.

    After that the worker logs an error and tries to unstick it; after as
    long again it exits so its supervisor restarts it (``streams.watchdog``).
    """
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a new consumer group starts; earliest so no event is skipped."""

    log_format: Literal["json", "console"] = "console"
    """Worker logs: one JSON object per line (the image's default), or readable lines."""

    log_repeat_burst: Annotated[int, Field(ge=0, le=1_000_000)] = 5
    """Warnings and errors shown per call site every 10 s (the rest are counted); 0: no limit."""

    producer_linger_seconds: Annotated[float, Field(ge=0, le=1)] = 0.005
    """How long the producer waits to fill a batch before sending it.

    Faust's default, 0, sent a produce request for almost every message (more
    than one per event, each a syscall here and a request for the broker to
    handle); a few milliseconds batch them at a cost far below the latency
    target. Everything is flushed before offsets commit whatever this is.
    """

    producer_max_batch_size: Annotated[int, Field(ge=16_384, le=1024 * 1024)] = 256 * 1024
    """Bytes the producer batches per partition; a full batch makes the next send wait.

    A commit writes the changelog records of every customer changed since the
    last one (about 1.4 KB each); Faust's 16 KiB batches held eleven, so a
    commit waited for a round trip to the broker every eleven records. At most
    1 MiB: the broker refuses larger record batches by default.
    """

    def faust_tuning(self) -> dict[str, Any]:
        """Faust's throughput settings, by Faust's names (``streams.app`` passes them on)."""
        return {
            "producer_linger": self.producer_linger_seconds,
            "producer_max_batch_size": self.producer_max_batch_size,
        }

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_are_host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65_536):
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value

    @field_validator("store")
    @classmethod
    def _store_is_supported(cls, value: str) -> str:
        if value == "memory://":
            return value
        if value == "rocksdb://":
            if importlib.util.find_spec("rocksdict") is None:
                raise ValueError("rocksdb:// needs rocksdict: pip install 'nudge[rocksdb]'")
            return value
        raise ValueError("expected memory:// or rocksdb://")

    @field_validator("business_time_zone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _stalls_outlast_commits(self) -> Settings:
        # A healthy partition commits once per interval; a shorter stall
        # period would call every quiet stretch between commits a stall.
        if self.stall_seconds < 2 * self.commit_interval_seconds:
            raise ValueError(
                f"stall_seconds ({self.stall_seconds:g}) must be at least twice "
                f"commit_interval_seconds ({self.commit_interval_seconds:g})"
            )
        return self

    @model_validator(mode="after")
    def _topics_are_distinct(self) -> Settings:
        names = self.inbound_topics()
        every = [*names.values(), *self.outbound_topics().values(), self.topic_deadletter]
        if len(set(every)) != len(every):
            raise ValueError(f"topic names must be distinct, got {every}")
        return self

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        # Refused rather than ignored: a password set beside PLAINTEXT means
        # the operator believes the connection authenticates, and it would not.
        protocol = f"NUDGE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        sasl = self.kafka_security_protocol.startswith("SASL_")
        given = {
            "NUDGE_KAFKA_SASL_USERNAME": self.kafka_sasl_username is not None,
            "NUDGE_KAFKA_SASL_PASSWORD": self.kafka_sasl_password is not None,
        }
        if sasl and not all(given.values()):
            missing = " and ".join(name for name, present in given.items() if not present)
            raise ValueError(f"{protocol} authenticates with SASL: set {missing}")
        if not sasl and any(given.values()):
            named = " and ".join(name for name, present in given.items() if present)
            raise ValueError(
                f"{named} would be ignored with {protocol}: use SASL_PLAINTEXT or SASL_SSL"
            )
        tls_files = {
            "NUDGE_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "NUDGE_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "NUDGE_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
            "NUDGE_KAFKA_SSL_KEY_PASSWORD": self.kafka_ssl_key_password,
        }
        named = " and ".join(name for name, value in tls_files.items() if value is not None)
        if named and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(f"{named} would be ignored with {protocol}: use SSL or SASL_SSL")
        if self.kafka_ssl_certfile is None and (
            self.kafka_ssl_keyfile is not None or self.kafka_ssl_key_password is not None
        ):
            raise ValueError(
                "a client key (NUDGE_KAFKA_SSL_KEYFILE, NUDGE_KAFKA_SSL_KEY_PASSWORD) "
                "needs its certificate: set NUDGE_KAFKA_SSL_CERTFILE"
            )
        return self

    @model_validator(mode="after")
    def _exposed_api_needs_a_token(self) -> Settings:
        if self.api_token is None and not _is_loopback(self.web_bind):
            raise ValueError(
                f"NUDGE_WEB_BIND={self.web_bind} exposes customer profiles beyond this "
                "machine: set NUDGE_API_TOKEN (a bearer token) or bind 127.0.0.1"
            )
        return self

    def secrets(self) -> tuple[SecretStr, ...]:
        """Return the secrets that are set, so log output can be scrubbed of their values."""
        values = (getattr(self, name) for name in sorted(SECRET_FIELDS))
        return tuple(value for value in values if value is not None)

    def inbound_topics(self) -> dict[str, str]:
        """Map each inbound topic kind (``clickstream``...) to its topic name."""
        return {
            "clickstream": self.topic_clickstream,
            "cart": self.topic_cart,
            "email": self.topic_email,
            "customers": self.topic_customers,
        }

    def consumed_topics(self) -> dict[str, str]:
        """Map the inbound topics and the replay topic, by their metrics label, to names."""
        return self.inbound_topics() | {"replay": self.topic_replay}

    def outbound_topics(self) -> dict[str, str]:
        """Map each topic Nudge writes (besides dead letters) to its name."""
        return {
            "profiles": self.topic_profiles,
            "triggers": self.topic_triggers,
            "holdout": self.topic_holdout,
            "decisions": self.topic_decisions,
            "training": self.topic_training,
            "clock": self.topic_clock,
        }

    def decode_limits(self) -> DecodeLimits:
        """Build the decoder's bounds from these settings."""
        return DecodeLimits(
            max_bytes=self.max_event_bytes,
            max_future_skew=timedelta(seconds=self.max_future_skew_seconds),
        )

    @property
    def inbound_max_message_bytes(self) -> int:
        """What inbound topics accept: enough to dead-letter oversized events whole.

        The topic's limit, not the decoder's, is what a producer hits; keeping it
        well above ``max_event_bytes`` means an oversized event reaches the
        worker and lands in the dead-letter topic instead of failing unseen at
        the producer.
        """
        return 8 * self.max_event_bytes

    @property
    def deadletter_max_message_bytes(self) -> int:
        """Room for the largest inbound message as base64 inside a JSON record."""
        return (self.inbound_max_message_bytes * 4) // 3 + 64 * 1024


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, or stop with the names of the bad ones."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidSettingsError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """One line per bad setting, naming the environment variable a user sets."""
    lines = ["Nudge cannot start: invalid settings"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        given = error.get("input")
        hidden = isinstance(given, dict) or given is None or field in SECRET_FIELDS
        shown = "" if hidden else f" (got {given!r})"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {name}: {message}{shown}")
    return "\n".join(lines)
