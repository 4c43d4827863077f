"""Events and profile reads for the tests of the learning loop through a real worker."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
"""Start of the simulated October the learning tests replay."""

SETTINGS = {
    "NUDGE_WALL_CLOCK": "false",  # event time only: this is a replay of October
    "NUDGE_MIN_POSITIVES": "5",
    "NUDGE_SNAPSHOT_EVERY_EXAMPLES": "20",
    "NUDGE_HOLDOUT_SHARE": "0",
}
"""Worker settings that make a model warm and snapshotted after a few dozen examples."""


def event(kind: str, customer: str, at: datetime, **fields: Any) -> tuple[bytes, bytes]:
    body = {
        "event_id": str(uuid.uuid4()),
        "customer_id": customer,
        "type": kind,
        "occurred_at": at.isoformat(),
        "session_id": f"s-{customer}-{at:%d%H}",
        **fields,
    }
    return customer.encode(), orjson.dumps(body)


def view(customer: str, at: datetime) -> tuple[bytes, bytes]:
    return event("product_view", customer, at, product_id="sku-1", price="30.00", currency="EUR")


def order(customer: str, at: datetime) -> tuple[bytes, bytes]:
    line = {"product_id": "sku-1", "quantity": 1, "unit_price": "30.00"}
    return event(
        "order_completed",
        customer,
        at,
        order_id=f"o-{customer}",
        lines=[line],
        total="30.00",
        currency="EUR",
    )


def profile(port: int, customer: str) -> dict[str, Any]:
    """The API's document, or an empty one while the worker has no profile (404, 503)."""
    url = f"http://127.0.0.1:{port}/customers/{customer}"
    try:
        with urllib.request.urlopen(url) as response:
            return dict(orjson.loads(response.read()))
    except urllib.error.HTTPError as error:
        if error.code in (404, 503):  # not applied yet, or partitions moving
            return {"profile": {"purchases": {"order_ids": []}, "scores": {}}}
        raise
