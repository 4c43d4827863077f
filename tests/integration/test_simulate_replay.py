"""``nudge simulate`` and ``nudge replay`` publish to the real broker, keyed by customer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import DecodeError, TopicKind, decode
from streams.settings import Settings
from streams.simulator import SimulationConfig, events
from streams.simulator.publish import JsonLinesSink, publish
from streams.simulator.shop import generate
from streams.topics import ensure_topics, topic_specs
from tests.support.kafka_io import read_all
from tests.support.worker import WorkerEnv

pytestmark = pytest.mark.integration

START = "2026-11-01T00:00:00Z"
NUDGE = Path(sys.executable).with_name("nudge")


def prepared(bootstrap: str) -> tuple[WorkerEnv, Settings]:
    env = WorkerEnv.fresh(bootstrap)
    fields = {name.removeprefix("NUDGE_").lower(): value for name, value in env.variables().items()}
    settings = Settings(**fields)  # type: ignore[arg-type]
    ensure_topics(bootstrap, topic_specs(settings))
    return env, settings


def nudge(env: WorkerEnv, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    variables.update(env.variables())
    return subprocess.run(
        [str(NUDGE), "--json", *args],
        env=variables,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def published(env: WorkerEnv, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Read every inbound topic back; check each message is valid and keyed by its customer."""
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in TopicKind:
        records = read_all(env.bootstrap, env.topic(kind.value))
        for record in records:
            event = decode(
                kind,
                record.value,
                now=datetime.max.replace(tzinfo=UTC),
                limits=settings.decode_limits(),
            )
            assert not isinstance(event, DecodeError), event
            assert record.key == event.customer_id.encode()
        found[kind.value] = [orjson.loads(r.value) for r in records if r.value is not None]
    return found


def test_simulate_publishes_what_its_summary_counts(kafka_bootstrap: str, tmp_path: Path) -> None:
    env, settings = prepared(kafka_bootstrap)
    done = nudge(
        env, tmp_path, "simulate", "--seed", "7", "--customers", "50", "--days", "1",
        "--start", START, "--truth", str(tmp_path / "truth.jsonl"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert summary["stopped_by"] == "end"

    topics = published(env, settings)
    counts = {kind: len(messages) for kind, messages in topics.items()}
    assert counts == summary["by_kind"]
    assert summary["events"] > 200

    # The process published exactly what the generator gives for the same config.
    config = SimulationConfig(
        seed=7,
        customers=50,
        start=datetime.fromisoformat(START),
        duration=timedelta(days=1),
    )
    expected = Counter(record.kind.value for record in events(config))
    assert counts == dict(expected)
    ids = {m["event_id"] for messages in topics.values() for m in messages}
    assert len(ids) == summary["events"]
    truth = (tmp_path / "truth.jsonl").read_bytes().splitlines()
    assert len(truth) == summary["truth_records"]


def test_replay_publishes_the_valid_lines_and_names_the_invalid_ones(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, settings = prepared(kafka_bootstrap)
    config = SimulationConfig(seed=9, customers=20, duration=timedelta(hours=12))
    source = tmp_path / "simulated.jsonl"
    publish(generate(config), JsonLinesSink(source))
    lines = source.read_bytes().splitlines(keepends=True)
    expected = Counter(orjson.loads(line)["topic_kind"] for line in lines)
    # A bare event (no wrapper) is routed by its type.
    bare = orjson.loads(lines[5])["event"]
    lines[5] = orjson.dumps(bare) + b"\n"
    lines.insert(2, b'{"type": "page_view", "customer_id": "c1"}\n')  # line 3: fields missing
    lines.insert(9, b"this is not json\n")  # line 10
    path = tmp_path / "replay.jsonl"
    path.write_bytes(b"".join(lines))
    valid = len(lines) - 2

    done = nudge(env, tmp_path, "replay", str(path))
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 10"]
    assert "validation_failed" in errors[0]
    assert "invalid_json" in errors[1]
    summary = orjson.loads(done.stdout)
    assert (summary["events"], summary["invalid"]) == (valid, 2)

    topics = published(env, settings)
    assert {kind: len(messages) for kind, messages in topics.items()} == {
        kind.value: expected.get(kind.value, 0) for kind in TopicKind
    }
    assert summary["by_kind"] == {kind: len(messages) for kind, messages in topics.items()}
