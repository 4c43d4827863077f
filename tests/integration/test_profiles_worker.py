"""Profiles through the real broker and a real worker: exact, durable, readable."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.support.kafka_io import publish, read_all, wait_for
from tests.support.worker import WorkerEnv, running_worker

pytestmark = pytest.mark.integration

CUSTOMERS = 2_000
ORDERS = 20_000
ZONE = "America/New_York"
AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Order:
    customer: str
    order_id: str
    at: datetime
    total: Decimal


def order_log(rng: random.Random) -> list[Order]:
    """Orders over a year, bunched so many customers order twice on one day."""
    start = datetime(2025, 11, 1, tzinfo=UTC)
    orders = []
    for n in range(ORDERS):
        customer = f"c{rng.randrange(CUSTOMERS):05d}"
        at = start + timedelta(days=rng.randrange(360), minutes=rng.randrange(24 * 60))
        total = Decimal(rng.randrange(100, 50_000)) / 100
        orders.append(Order(customer, f"o{n:06d}", at, total))
    return orders


def reference_summary(orders: list[Order], as_of: datetime) -> dict[str, dict[str, Any]]:
    """The buy-till-you-die summary, computed independently of Nudge."""
    zone = ZoneInfo(ZONE)
    days: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for order in orders:
        days[order.customer][order.at.astimezone(zone).date()] += order.total
    observed = as_of.astimezone(zone).date()
    summaries = {}
    for customer, per_day in days.items():
        ordered = sorted(per_day)
        first, last = ordered[0], ordered[-1]
        repeat = [per_day[d] for d in ordered[1:]]
        summaries[customer] = {
            "frequency": len(repeat),
            "recency": (last - first).days,
            "T": (observed - first).days,
            "monetary_value": sum(repeat, Decimal(0)) / len(repeat) if repeat else Decimal(0),
        }
    return summaries


def order_message(order: Order, event_id: str) -> tuple[bytes, bytes]:
    event = {
        "event_id": event_id,
        "customer_id": order.customer,
        "type": "order_completed",
        "occurred_at": order.at.isoformat(),
        "order_id": order.order_id,
        "lines": [{"product_id": "sku-1", "quantity": 1, "unit_price": str(order.total)}],
        "total": str(order.total),
        "currency": "USD",
    }
    return order.customer.encode(), orjson.dumps(event)


def fetch_profile(port: int, customer: str) -> dict[str, Any] | None:
    """The API's document for ``customer``, or None while the worker has no profile yet."""
    url = f"http://127.0.0.1:{port}/customers/{customer}?as_of={AS_OF.isoformat()}"
    try:
        with urllib.request.urlopen(url.replace("+00:00", "Z"), timeout=10) as response:
            return dict(orjson.loads(response.read()))
    except urllib.error.HTTPError as error:
        body = error.read()
        if (error.code == 404 and b"no profile" in body) or error.code == 503:
            return None  # not applied yet, or partitions still being (re)assigned
        raise AssertionError(f"GET {url}: {error.code} {body[:2000]!r}") from error


def mismatches(port: int, expected: dict[str, dict[str, Any]]) -> list[str]:
    found = []
    for customer, summary in expected.items():
        document = fetch_profile(port, customer)
        if document is None:
            found.append(f"{customer}: no profile (yet)")
            continue
        got = document["summary"]
        for field in ("frequency", "recency", "T"):
            if got[field] != summary[field]:
                found.append(f"{customer}.{field}: {got[field]} != {summary[field]}")
        money = Decimal(got["monetary_value"])
        if abs(money - summary["monetary_value"]) > Decimal("0.0001"):
            found.append(f"{customer}.monetary_value: {money} != {summary['monetary_value']}")
    return found


STORES = {
    "memory": {},
    # On disk, with most profiles read back from their bytes (100 of 2,000 kept decoded):
    # the restarted worker reads its own RocksDB files, then the changelog past their offsets.
    "rocksdb": {"NUDGE_STORE": "rocksdb://", "NUDGE_PROFILE_CACHE_CUSTOMERS": "100"},
}


@pytest.mark.parametrize("store", sorted(STORES))
def test_purchase_summaries_match_an_independent_reference_across_a_sigkill(
    kafka_bootstrap: str, tmp_path: Path, store: str
) -> None:
    rng = random.Random(7)
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    orders = order_log(rng)
    expected = reference_summary(orders, AS_OF)

    messages: list[tuple[str, bytes | None, bytes | None]] = []
    for order in orders:
        key, value = order_message(order, str(uuid.UUID(int=rng.getrandbits(128))))
        messages.append((env.topic("cart"), key, value))
    # Redeliveries: the same event again, and the same order under a new event id.
    for order in rng.sample(orders, 500):
        messages.append((env.topic("cart"), *order_message(order, f"again-{order.order_id}")))
    messages.extend(rng.sample(messages, 500))
    rng.shuffle(messages)  # out of order on purpose

    variables = {"NUDGE_BUSINESS_TIME_ZONE": ZONE, "NUDGE_DATA_DIR": str(tmp_path / "data")}
    variables |= STORES[store]
    with running_worker(env, tmp_path / "worker-1.log", extra=variables) as worker:
        publish(kafka_bootstrap, messages)
        wait_for(lambda: not mismatches(env.web_port, expected), timeout=240, what="summaries")
        worker.kill()  # SIGKILL: no clean shutdown, no final commit
        worker.wait()

    with running_worker(env, tmp_path / "worker-2.log", extra=variables):
        # The restarted worker restores its table from the changelog; the first
        # answers may be 503 until the group has moved every partition to it.
        wait_for(
            lambda: not mismatches(env.web_port, expected), timeout=120, what="restored summaries"
        )

    # Segment changes were published for the ESP's audiences.
    changes = [
        orjson.loads(r.value or b"null") for r in read_all(kafka_bootstrap, env.topic("profiles"))
    ]
    assert {change["customer_id"] for change in changes} == set(expected)
