"""A real worker on the real broker takes in every event and loses none."""

from __future__ import annotations

import base64
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from tests.support.events import BASE_TIME, bad_messages, encode, valid_event
from tests.support.kafka_io import latest_by_key, publish, read_all, wait_for
from tests.support.sockets import listening_sockets
from tests.support.worker import WorkerEnv, running_worker, scrape

pytestmark = pytest.mark.integration

VALID = 2_000
BAD = 200
CUSTOMERS = 150
KINDS = ("clickstream", "cart", "email", "customers")


def counts_in_changelog(env: WorkerEnv) -> dict[str, int]:
    """Events applied per customer, as the profile table's changelog holds them."""
    table = latest_by_key(read_all(env.bootstrap, env.changelog("profiles")))
    return {
        key.decode(): orjson.loads(value)["events_applied"]
        for key, value in table.items()
        if key is not None and value is not None
    }


def test_every_valid_event_counted_once_and_every_bad_one_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(20261123)
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    customers = [f"cust-{n:04d}" for n in range(CUSTOMERS)]

    messages: list[tuple[str, bytes | None, bytes | None]] = []
    expected_counts: Counter[str] = Counter()
    expected_bad: list[tuple[str, str, str, bytes]] = []
    for n in range(VALID):
        customer = rng.choice(customers)
        kind = KINDS[n % len(KINDS)]
        event = valid_event(rng, kind, customer, BASE_TIME + timedelta(seconds=n))
        messages.append((env.topic(kind), customer.encode(), encode(event)))
        expected_counts[customer] += 1
        if n % (VALID // BAD) == 0:
            label, bad_kind, key, raw, reason, named = bad_messages(
                rng, customer, len(expected_bad)
            )
            messages.append((env.topic(bad_kind), key, raw))
            expected_bad.append((label, reason, named, raw))
    assert len(expected_bad) == BAD

    with running_worker(env, tmp_path / "worker.log") as worker:
        # The web server (metrics, profiles) listens on loopback only by default.
        assert {address for address, _ in listening_sockets(worker.pid)} == {"127.0.0.1"}

        publish(kafka_bootstrap, messages)

        deadletters = wait_for(
            lambda: (
                (r := read_all(kafka_bootstrap, env.topic("events.deadletter")))
                and len(r) >= BAD
                and r
            ),
            timeout=180,
            what=f"{BAD} dead letters",
        )
        counts = wait_for(
            lambda: (c := counts_in_changelog(env)) == expected_counts and c,
            timeout=180,
            what="event counts equal to what was published",
        )
        assert counts == expected_counts
        assert len(deadletters) == BAD

        # Every bad message is there, with its bytes intact and a reason that says why.
        by_raw = {base64.b64decode(orjson.loads(r.value)["value_b64"]): r for r in deadletters}
        for label, reason, named, raw in expected_bad:
            record = orjson.loads(by_raw[raw].value)
            assert record["reason"] == reason, label
            described = record["detail"] + " " + " ".join(e["loc"] for e in record["errors"])
            assert named.lower() in described.lower(), (label, record["detail"])
            assert record["topic"].endswith(env.suffix)
            assert record["offset"] >= 0

        # Still consuming afterwards: one more event is counted.
        latecomer = customers[0]
        publish(
            kafka_bootstrap,
            [
                (
                    env.topic("cart"),
                    latecomer.encode(),
                    encode(valid_event(rng, "cart", latecomer, BASE_TIME)),
                )
            ],
        )
        wait_for(
            lambda: counts_in_changelog(env).get(latecomer) == expected_counts[latecomer] + 1,
            timeout=60,
            what="the event published after the garbage",
        )

        metrics = scrape(env.web_port)
        assert "nudge_events_consumed_total" in metrics
        assert "nudge_events_deadlettered_total" in metrics
