"""Erasure: after ``customer_erased`` nothing personal about the customer is left in any store.

A simulated shop runs through a worker; then the 30 busiest customers are
erased while their carts, sessions, deadlines and label snapshots are live,
and they keep sending events afterwards. Every store is inspected: the
newest record of each table's changelog (what a restarted worker restores),
the profile API (which reads state not yet committed too), the model
snapshots, and every outbound topic after the erasure. Older changelog
records stay until Kafka compacts the topic (SECURITY.md says so); the
newest record is the state.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from online_models.labels import erased as erased_labels
from schemas import TopicKind, encode
from streams.core.engine import Deadlines
from streams.simulator import SimulationConfig, events
from tests.support.event_time import EVENT_TIME
from tests.support.events import KeyedMessage, keyed_message
from tests.support.kafka_io import latest_by_key, read_all
from tests.support.ordered import InOrder, partition_of, wait_caught_up
from tests.support.worker import WorkerEnv, running_worker

pytestmark = pytest.mark.integration

SETTINGS = EVENT_TIME | {"NUDGE_HIGH_INTENT_THRESHOLD": "0.2", "NUDGE_HOLDOUT_SHARE": "0.1"}
SHOP = SimulationConfig(
    seed=41,
    customers=200,
    start=datetime(2026, 10, 26, tzinfo=UTC),
    duration=timedelta(days=1),
)
ERASED = 30


def afterwards(customer: str, at: datetime) -> list[KeyedMessage]:
    """What an erased customer's devices keep sending: browsing, a cart, an order."""
    product = {"product_id": "sku-9", "price": "80.00", "currency": "EUR", "category": "bags"}
    line = {"product_id": "sku-9", "quantity": 1, "unit_price": "80.00"}
    return [
        keyed_message(TopicKind.clickstream, "product_view", customer, at, **product),
        keyed_message(TopicKind.cart, "cart_add", customer, at + timedelta(minutes=1), **line),
        keyed_message(
            TopicKind.cart,
            "order_placed",
            customer,
            at + timedelta(minutes=2),
            order_id=f"after-{customer}",
            lines=[line],
            total="80.00",
            currency="EUR",
        ),
    ]


def changelogs(env: WorkerEnv) -> dict[str, dict[bytes | None, bytes | None]]:
    return {
        table: latest_by_key(read_all(env.bootstrap, env.changelog(table)))
        for table in ("profiles", "deadlines", "labels")
    }


def stored(records: dict[bytes | None, bytes | None], customer: str) -> Any:
    return orjson.loads(records[customer.encode()] or b"null")


def test_an_erased_customer_leaves_nothing_personal_in_any_store(
    kafka_bootstrap: str, kafka_admin: Any, tmp_path: Path
) -> None:
    simulated = list(events(SHOP))
    shop = [(r.kind, r.event.customer_id.encode(), encode(r.event)) for r in simulated]
    busiest = Counter(r.event.customer_id for r in simulated).most_common(ERASED)
    erased = sorted(customer for customer, _ in busiest)
    end = max(r.event.occurred_at for r in simulated)
    erased_at = end + timedelta(minutes=1)

    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    log = tmp_path / "worker.log"
    with running_worker(env, log, extra=SETTINGS):
        sink = InOrder(env, log)
        for item in shop:
            sink.send(*item)
        sink.settle()
        wait_caught_up(kafka_admin, env)
        before = changelogs(env)

        erasures = [
            keyed_message(TopicKind.customers, "customer_erased", c, erased_at) for c in erased
        ]
        later = [m for c in erased for m in afterwards(c, erased_at + timedelta(minutes=5))]
        # One event per partition a day later fires whatever deadline or label
        # horizon the erased customers had.
        ticks: dict[int, str] = {}
        for n in range(1_000):
            ticks.setdefault(partition_of(f"tick-{n}".encode(), env.partitions), f"tick-{n}")
        next_day = erased_at + timedelta(days=2)
        tick_events = [
            keyed_message(
                TopicKind.clickstream, "page_view", c, next_day, url="https://shop.example/"
            )
            for c in ticks.values()
        ]
        for item in erasures + later + tick_events:
            sink.send(*item)
        sink.close()
        wait_caught_up(kafka_admin, env)
        documents = {c: _get(env.web_port, c) for c in erased}
    after = changelogs(env)

    # Not vacuous: before the erasure they had profiles, live deadlines and snapshots.
    assert all(stored(before["profiles"], c)["kind"] == "profile" for c in erased)
    assert any(
        stored(before["deadlines"], c)["items"] for c in erased if _in(before["deadlines"], c)
    )
    assert any(stored(before["labels"], c)["examples"] for c in erased if _in(before["labels"], c))

    for customer in erased:
        profile = stored(after["profiles"], customer)
        assert set(profile) == {"kind", "customer_id", "erased_at"}, customer
        assert profile["kind"] == "tombstone"
        if _in(after["deadlines"], customer):
            empty = Deadlines(customer_id=customer).to_bytes()
            assert stored(after["deadlines"], customer) == orjson.loads(empty), customer
        if _in(after["labels"], customer):
            nothing = orjson.loads(erased_labels(customer).to_bytes())
            assert stored(after["labels"], customer) == nothing, customer
        assert documents[customer] == {
            "customer_id": customer,
            "erased": True,
            "erased_at": profile["erased_at"],
        }

    # The models hold weights, not customers.
    snapshots = read_all(env.bootstrap, env.changelog("model-snapshots"))
    assert not any(c.encode() in (r.value or b"") for r in snapshots for c in erased)

    # Nothing goes out about them after the erasure: no trigger, decision or example.
    gone = set(erased)
    for topic, stamp in (
        ("triggers", "occurred_at"),
        ("holdout", "occurred_at"),
        ("decisions", "occurred_at"),
        ("training", "labelled_at"),
    ):
        late = [
            record
            for record in map(_loads, read_all(env.bootstrap, env.topic(topic)))
            if record["customer_id"] in gone and datetime.fromisoformat(record[stamp]) >= erased_at
        ]
        assert late == [], topic


def _in(records: dict[bytes | None, bytes | None], customer: str) -> bool:
    return customer.encode() in records


def _loads(record: Any) -> dict[str, Any]:
    return dict(orjson.loads(record.value))


def _get(port: int, customer: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/customers/{customer}") as response:
        return orjson.loads(response.read())
