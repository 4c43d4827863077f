"""Valid and invalid inbound messages, as a shop's producers would send them.

Plain dicts and bytes, not Nudge's models: the tests publish what the wire
carries, so a model change that breaks producers breaks these tests too.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

EventFactory = Callable[[random.Random, str, datetime], dict[str, Any]]

BASE_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _envelope(kind: str, customer: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "customer_id": customer,
        "type": kind,
        "occurred_at": at.isoformat(),
        "session_id": f"s-{customer}-{at:%Y%m%d}",
        "schema_version": 1,
    }


def _clickstream(rng: random.Random, customer: str, at: datetime) -> dict[str, Any]:
    kind = rng.choice(["page_view", "product_view", "category_view", "search"])
    event = _envelope(kind, customer, at, rng)
    if kind == "page_view":
        event["url"] = f"https://shop.example/p/{rng.randint(1, 99)}"
    elif kind == "product_view":
        event |= {
            "product_id": f"sku-{rng.randint(1, 500)}",
            "price": round(rng.uniform(1, 300), 2),
            "currency": "EUR",
            "category": rng.choice(["shoes", "bags", "hats"]),
        }
    elif kind == "category_view":
        event["category"] = rng.choice(["shoes", "bags", "hats"])
    else:
        event["query"] = rng.choice(["red shoes", "tote", "wool hat"])
    return event


def _cart(rng: random.Random, customer: str, at: datetime) -> dict[str, Any]:
    kind = rng.choice(["cart_add", "cart_remove", "checkout_started", "order_completed"])
    event = _envelope(kind, customer, at, rng)
    cart_id = f"cart-{customer}"
    if kind in ("cart_add", "cart_remove"):
        event |= {
            "cart_id": cart_id,
            "product_id": f"sku-{rng.randint(1, 500)}",
            "quantity": rng.randint(1, 3),
            "unit_price": round(rng.uniform(1, 300), 2),
            "currency": "EUR",
        }
    elif kind == "checkout_started":
        event["cart_id"] = cart_id
    else:
        quantity, price = rng.randint(1, 3), round(rng.uniform(5, 200), 2)
        event |= {
            "order_id": f"o-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
            "lines": [{"product_id": "sku-1", "quantity": quantity, "unit_price": price}],
            "total": round(quantity * price, 2),
            "currency": "EUR",
        }
    return event


def _email(rng: random.Random, customer: str, at: datetime) -> dict[str, Any]:
    kind = rng.choice(
        [
            "email_sent",
            "email_delivered",
            "email_open",
            "email_click",
            "email_bounce",
            "email_unsubscribe",
            "email_complaint",
        ]
    )
    event = _envelope(kind, customer, at, rng) | {
        "campaign_id": f"c-{rng.randint(1, 5)}",
        "message_id": f"m-{rng.getrandbits(48):x}",
    }
    if kind == "email_bounce":
        event["bounce_type"] = rng.choice(["hard", "soft"])
    return event


def _customers(rng: random.Random, customer: str, at: datetime) -> dict[str, Any]:
    kind = rng.choice(["consent_changed", "profile_attributes"])
    event = _envelope(kind, customer, at, rng)
    if kind == "consent_changed":
        event |= {"channel": "email", "granted": rng.random() < 0.8}
    else:
        event |= {"time_zone": rng.choice(["Europe/Berlin", "America/New_York"]), "locale": "de-DE"}
    return event


FACTORIES: dict[str, EventFactory] = {
    "clickstream": _clickstream,
    "cart": _cart,
    "email": _email,
    "customers": _customers,
}


def valid_event(rng: random.Random, kind: str, customer: str, at: datetime) -> dict[str, Any]:
    return FACTORIES[kind](rng, customer, at)


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


# Each bad message: (label, topic kind, key, raw bytes, expected reason, word the detail names).
BadMessage = tuple[str, str, bytes, bytes, str, str]


def bad_messages(rng: random.Random, customer: str, index: int) -> BadMessage:
    """The ``index``-th bad message, cycling through every kind of garbage."""
    at = BASE_TIME + timedelta(minutes=index)
    key = customer.encode()
    product = valid_event(rng, "clickstream", customer, at)
    while product["type"] != "product_view":
        product = valid_event(rng, "clickstream", customer, at)
    kinds: list[Callable[[], BadMessage]] = [
        lambda: ("invalid_json", "cart", key, b'{"type": "cart_add", ', "invalid_json", "JSON"),
        lambda: ("not_utf8", "email", key, b'{"type": "\xff\xfe"}', "not_utf8", "UTF-8"),
        lambda: (
            "missing_field",
            "clickstream",
            key,
            encode({k: v for k, v in product.items() if k != "price"}),
            "validation_failed",
            "price",
        ),
        lambda: (
            "wrong_type",
            "clickstream",
            key,
            encode(product | {"price": "cheap"}),
            "validation_failed",
            "price",
        ),
        lambda: (
            "unknown_type",
            "cart",
            key,
            encode(_envelope("cart_teleport", customer, at, rng)),
            "unknown_type",
            "cart_teleport",
        ),
        lambda: (
            "naive_timestamp",
            "clickstream",
            key,
            encode(product | {"occurred_at": "2026-11-02T09:00:00"}),
            "validation_failed",
            "occurred_at",
        ),
        lambda: (
            "negative_price",
            "clickstream",
            key,
            encode(product | {"price": -5}),
            "validation_failed",
            "price",
        ),
        lambda: (
            "huge_payload",
            "customers",
            key,
            encode(product | {"padding": "x" * (1024 * 1024)}),
            "too_large",
            "bytes",
        ),
        lambda: ("empty", "email", key, b"", "empty", "empty"),
    ]
    return kinds[index % len(kinds)]()
