"""Triggers through the real broker and a real worker, on the live (wall) clock."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.kafka_io import publish, read_all, wait_for
from tests.support.worker import WorkerEnv, running_worker

pytestmark = pytest.mark.integration

FAST = {
    "NUDGE_BROWSE_WAIT_MINUTES": "0.05",  # 3 seconds
    "NUDGE_CART_WAIT_MINUTES": "0.05",
    "NUDGE_ALLOWED_LATENESS_SECONDS": "1",
    "NUDGE_CLOCK_TICK_SECONDS": "0.5",
    "NUDGE_HOLDOUT_SHARE": "0",
}


def event(kind: str, customer: str, at: datetime, **fields: Any) -> tuple[str, bytes, bytes]:
    body = {
        "event_id": str(uuid.uuid4()),
        "customer_id": customer,
        "type": kind,
        "occurred_at": at.isoformat(),
        "session_id": f"s-{customer}",
        **fields,
    }
    return kind, customer.encode(), orjson.dumps(body)


def topic_of(kind: str) -> str:
    if kind in ("consent_changed", "customer_erased"):
        return "customers"
    if kind.startswith(("cart", "order", "checkout")):
        return "cart"
    return "clickstream"


def test_browse_and_cart_abandonment_fire_on_the_wall_clock_and_respect_consent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    now = datetime.now(UTC) - timedelta(seconds=2)
    browsers = [f"browser-{n}" for n in range(12)]
    carters = [f"carter-{n}" for n in range(6)]
    silent = [f"no-consent-{n}" for n in range(6)]
    product = {"product_id": "sku-1", "price": "25.00", "currency": "EUR", "category": "hats"}
    line = {"cart_id": "cart-x", "product_id": "sku-1", "quantity": 1}
    events = []
    for customer in browsers + carters:
        events.append(event("consent_changed", customer, now, channel="email", granted=True))
    for customer in browsers + carters + silent:
        events.append(event("product_view", customer, now, **product))
    for customer in carters:
        events.append(event("cart_add", customer, now, **line, unit_price="25.00", currency="EUR"))

    with running_worker(env, tmp_path / "worker.log", extra=FAST):
        publish(
            kafka_bootstrap,
            [(env.topic(topic_of(kind)), key, value) for kind, key, value in events],
        )

        def triggers() -> list[dict[str, Any]]:
            records = read_all(kafka_bootstrap, env.topic("triggers"))
            return [orjson.loads(r.value or b"null") for r in records]

        def all_triggers() -> list[dict[str, Any]] | None:
            found = triggers()
            return found if len(found) >= len(browsers + carters) else None

        sent = wait_for(all_triggers, timeout=90, what="a trigger for every consenting customer")
        decisions = [
            orjson.loads(r.value or b"null")
            for r in read_all(kafka_bootstrap, env.topic("decisions"))
        ]

    by_customer = {t["customer_id"]: t for t in sent}
    assert len(sent) == len(browsers + carters)  # one each: the cap and the rules agree
    assert {c: by_customer[c]["trigger_type"] for c in browsers} == dict.fromkeys(
        browsers, "browse_abandonment"
    )
    assert {c: by_customer[c]["trigger_type"] for c in carters} == dict.fromkeys(
        carters, "cart_abandonment"
    )
    assert not set(silent) & set(by_customer)
    outcomes = Counter((d["customer_id"].split("-")[0], d["outcome"]) for d in decisions)
    assert outcomes[("browser", "sent")] == len(browsers)
    assert outcomes[("carter", "sent")] == len(carters)
    assert outcomes[("no", "suppressed")] >= len(silent)
    assert all(d["reason"] == "no_consent" for d in decisions if d["outcome"] == "suppressed")
    assert len({t["trigger_id"] for t in sent}) == len(sent)
