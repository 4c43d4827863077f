"""Valid example events, as the JSON producers send, shared by the schema tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.codec import EVENT_TYPES, DecodeLimits, TopicKind

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
LIMITS = DecodeLimits(max_bytes=64 * 1024, max_future_skew=SKEW)

TOPIC_OF: dict[str, TopicKind] = {
    tag: kind for kind, members in EVENT_TYPES.items() for tag in members
}
CLASS_OF: dict[str, type[Any]] = {
    tag: cls for members in EVENT_TYPES.values() for tag, cls in members.items()
}
ALL_TYPES: list[str] = sorted(TOPIC_OF)

_EMAIL = {"campaign_id": "cmp-1", "message_id": "msg-1"}
_LINE_CHANGE = {
    "cart_id": "cart-1",
    "product_id": "sku-1",
    "quantity": 2,
    "unit_price": "19.99",
    "currency": "EUR",
}

# Only the required fields of each event type, beyond the envelope.
MINIMAL: dict[str, dict[str, Any]] = {
    "page_view": {"url": "https://shop.example/"},
    "product_view": {"product_id": "sku-1", "price": 19.99, "currency": "EUR"},
    "category_view": {"category": "Shoes"},
    "search": {"query": "red shoes"},
    "cart_add": dict(_LINE_CHANGE),
    "cart_remove": dict(_LINE_CHANGE),
    "checkout_started": {"cart_id": "cart-1"},
    "order_completed": {
        "order_id": "ord-1",
        "lines": [{"product_id": "sku-1", "quantity": 2, "unit_price": "10.00"}],
        "total": "24.90",
        "currency": "EUR",
    },
    "email_sent": dict(_EMAIL),
    "email_delivered": dict(_EMAIL),
    "email_open": dict(_EMAIL),
    "email_click": dict(_EMAIL),
    "email_bounce": {**_EMAIL, "bounce_type": "hard"},
    "email_unsubscribe": dict(_EMAIL),
    "email_complaint": dict(_EMAIL),
    "consent_changed": {"channel": "email", "granted": True},
    "customer_erased": {},
    "profile_attributes": {"locale": "fr-FR"},
}

# Every optional field too.
OPTIONAL: dict[str, dict[str, Any]] = {
    "page_view": {"referrer": "android-app://com.google.android.gm/", "title": "Home"},
    "product_view": {"category": "Shoes > Running"},
    "category_view": {},
    "search": {"results_count": 42},
    "cart_add": {},
    "cart_remove": {},
    "checkout_started": {"value": "59.97", "currency": "GBP"},
    "order_completed": {"cart_id": "cart-1"},
    "email_sent": {},
    "email_delivered": {},
    "email_open": {},
    "email_click": {"url": "https://shop.example/sale?utm_source=nudge"},
    "email_bounce": {},
    "email_unsubscribe": {},
    "email_complaint": {},
    "consent_changed": {"source": "preference center"},
    "customer_erased": {},
    "profile_attributes": {"time_zone": "Europe/Paris"},
}

assert set(MINIMAL) == set(OPTIONAL) == set(ALL_TYPES), "a sample per event type"


def envelope(event_type: str) -> dict[str, Any]:
    """The required envelope fields of one event."""
    return {
        "type": event_type,
        "event_id": "evt-1",
        "customer_id": "cus-1",
        "occurred_at": "2024-05-01T11:59:00Z",
    }


def minimal(event_type: str) -> dict[str, Any]:
    """A valid event with only its required fields."""
    return {**envelope(event_type), **MINIMAL[event_type]}


def full(event_type: str) -> dict[str, Any]:
    """A valid event with every field given."""
    return {
        **minimal(event_type),
        **OPTIONAL[event_type],
        "session_id": "ses-1",
        "schema_version": 1,
    }


def dumps(obj: object) -> bytes:
    """JSON bytes, as a producer would send them."""
    return orjson.dumps(obj)
