"""Valid and invalid inbound messages, as a shop's producers would send them.

Plain dicts and bytes, not Nudge's models: the tests publish what the wire
carries, so a model change that breaks producers breaks these tests too. Only
the poison generators read the models, to put a wrong type in every field the
models declare.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas import TopicKind
from schemas.codec import EVENT_TYPES

Event = dict[str, Any]
EventFactory = Callable[[random.Random, str, datetime], dict[str, Any]]

BASE_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


KeyedMessage = tuple[TopicKind, bytes, bytes]


def keyed_message(
    kind: TopicKind, type_: str, customer: str, at: datetime, **fields: Any
) -> KeyedMessage:
    """One event as a producer sends it: its topic kind, the customer as key, JSON bytes.

    A fresh random ``event_id`` each call, as a shop's producer would give it:
    the integration tests that use it compare state, never event ids.
    """
    body = {
        "event_id": str(uuid.uuid4()),
        "customer_id": customer,
        "type": type_,
        "occurred_at": at.isoformat(),
        **fields,
    }
    return kind, customer.encode(), orjson.dumps(body)


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


# --- Poison: garbage of every kind, for the volume tests and the fuzz seeds ---------------

ERASED = "erased"
"""The outcome expected of a valid event about an erased customer: skipped, not dead-lettered."""

MAX_EVENT_BYTES = 256 * 1024
"""The worker's default ``NUDGE_MAX_EVENT_BYTES``: the poison is sized around it."""

MIB = 1024 * 1024

KINDS = ("clickstream", "cart", "email", "customers")

TOPIC_OF_TYPE: dict[str, str] = {
    tag: kind.value for kind, members in EVENT_TYPES.items() for tag in members
}
CLASS_OF_TYPE: dict[str, Any] = {
    tag: cls for members in EVENT_TYPES.values() for tag, cls in members.items()
}


@dataclass(frozen=True)
class Poison:
    """One message no worker may apply, and what must become of it.

    ``reason`` is the dead-letter reason expected, or :data:`ERASED` for a
    valid event about an erased customer (skipped, never dead-lettered);
    ``named`` is a word the dead letter's detail or field locations must
    contain, so a right reason given for the wrong cause still fails.
    """

    label: str
    kind: str
    key: bytes | None
    value: bytes | None
    reason: str
    named: str


def event_of_type(rng: random.Random, event_type: str, customer: str, at: datetime) -> Event:
    """A valid event of exactly ``event_type``, as the producers send it."""
    kind = TOPIC_OF_TYPE[event_type]
    if event_type == "customer_erased":
        return _envelope(event_type, customer, at, rng)
    while True:
        event = FACTORIES[kind](rng, customer, at)
        if event["type"] == event_type:
            return event


# JSON values of each JSON Schema type, to put where the schema wants another.
_JSON_SAMPLES: dict[str, Any] = {
    "string": "wrong",
    "integer": 7,
    "number": 7.5,
    "boolean": True,
    "null": None,
    "array": ["wrong"],
    "object": {"wrong": 1},
}


def _json_types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a property's schema accepts (``number`` takes integers too)."""
    if "$ref" in schema:
        return _json_types(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return set().union(*(_json_types(option, defs) for option in schema["anyOf"]))
    if "type" in schema:
        accepted = {schema["type"]}
        return accepted | {"integer"} if "number" in accepted else accepted
    if "properties" in schema:
        return {"object"}
    raise ValueError(f"no JSON type in {schema}")


@functools.cache
def wrong_type_cases() -> tuple[tuple[str, str, Any], ...]:
    """(event type, field path, wrongly typed value) for every field of every event type.

    Derived from the models' JSON Schemas, so a field added to a model gets
    its cases without editing this list. Ordered in rounds: the first round
    gives every field one wrong type, the next one another, so that a run
    too short for all of them still puts a wrong type in every field.
    """
    rounds: list[list[tuple[str, str, Any]]] = []
    for event_type in sorted(TOPIC_OF_TYPE):
        schema = CLASS_OF_TYPE[event_type].model_json_schema()
        defs = schema.get("$defs", {})
        fields = sorted(schema["properties"].items())
        line = defs.get("OrderLine")
        if event_type == "order_completed" and line is not None:
            fields += [
                (f"lines.0.{name}", prop) for name, prop in sorted(line["properties"].items())
            ]
        for path, prop in fields:
            accepted = _json_types(prop, defs)
            wrong = [value for kind, value in _JSON_SAMPLES.items() if kind not in accepted]
            for n, value in enumerate(wrong):
                if len(rounds) <= n:
                    rounds.append([])
                rounds[n].append((event_type, path, value))
    return tuple(case for one_round in rounds for case in one_round)


@functools.cache
def missing_field_cases() -> tuple[tuple[str, str], ...]:
    """(event type, required field) for every required field of every event type."""
    return tuple(
        (event_type, field)
        for event_type in sorted(TOPIC_OF_TYPE)
        for field in CLASS_OF_TYPE[event_type].model_json_schema()["required"]
    )


def _set_path(event: Event, path: str, value: Any) -> Event:
    """A copy of ``event`` with the dotted ``path`` (``lines.0.quantity``) set to ``value``."""
    copied: Event = orjson.loads(orjson.dumps(event))
    *parents, last = path.split(".")
    target: Any = copied
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = value
    return copied


def _splice(event: Event, field: str, raw_value: bytes) -> bytes:
    """``event`` as JSON with one more field whose value is written as given, JSON or not."""
    return encode(event)[:-1] + b',"' + field.encode() + b'":' + raw_value + b"}"


def _family_wrong_type(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    cases = wrong_type_cases()
    event_type, path, value = cases[n % len(cases)]
    event = _set_path(event_of_type(rng, event_type, customer, at), path, value)
    kind = TOPIC_OF_TYPE[event_type]
    label = f"wrong type: {event_type}.{path} = {value!r}"
    if path == "type":
        return Poison(label, kind, customer.encode(), encode(event), "unknown_type", "type")
    return Poison(label, kind, customer.encode(), encode(event), "validation_failed", path)


def _family_missing(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    cases = missing_field_cases()
    event_type, field = cases[n % len(cases)]
    event = event_of_type(rng, event_type, customer, at)
    del event[field]
    reason = "unknown_type" if field == "type" else "validation_failed"
    label = f"missing field: {event_type}.{field}"
    return Poison(label, TOPIC_OF_TYPE[event_type], customer.encode(), encode(event), reason, field)


def _family_message(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    key = customer.encode()
    view = event_of_type(rng, "page_view", customer, at)
    cases: list[tuple[str, str, bytes | None, str, str]] = [
        ("empty value", "email", b"", "empty", "empty"),
        ("null value (a Kafka tombstone)", "cart", None, "empty", "null"),
        ("truncated JSON", "cart", encode(view)[:-7], "invalid_json", "JSON"),
        ("whitespace only", "email", b" \n\t ", "invalid_json", "JSON"),
        ("trailing garbage", "clickstream", encode(view) + b" x", "invalid_json", "JSON"),
        ("single quotes", "clickstream", b"{'type': 'page_view'}", "invalid_json", "JSON"),
        ("array of events", "clickstream", orjson.dumps([view, view]), "not_an_object", "array"),
        ("JSON string", "customers", b'"customer_erased"', "not_an_object", "string"),
        ("JSON number", "cart", b"42", "not_an_object", "number"),
        ("JSON null", "email", b"null", "not_an_object", "null"),
        (
            "unknown event type",
            "cart",
            encode(_envelope("cart_teleport", customer, at, rng)),
            "unknown_type",
            "cart_teleport",
        ),
        (
            "type tag in another case",
            "clickstream",
            encode(view | {"type": "Page_View"}),
            "unknown_type",
            "Page_View",
        ),
        (
            "duplicate type key, the last unknown",
            "clickstream",
            _splice(view, "type", b'"page_vue"'),
            "unknown_type",
            "page_vue",
        ),
        ("event on the wrong topic", "cart", encode(view), "wrong_topic", "clickstream"),
    ]
    label, kind, raw, reason, named = cases[n % len(cases)]
    return Poison(label, kind, key, raw, reason, named)


def _family_utf8(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    key = customer.encode()
    view = event_of_type(rng, "category_view", customer, at)
    raw = encode(view)
    cases: list[tuple[str, bytes, str, str]] = [
        ("0xff bytes", b'{"type": "\xff\xfe"}', "not_utf8", "UTF-8"),
        (
            "Latin-1 text",
            raw.replace(view["category"].encode(), b"chaussures d\xe9t\xe9"),
            "not_utf8",
            "UTF-8",
        ),
        (
            "overlong encoding",
            raw.replace(b'"category"', b'"cat\xc0\xafegory"'),
            "not_utf8",
            "UTF-8",
        ),
        ("encoded surrogate", raw.replace(b'"category"', b'"\xed\xa0\x80"'), "not_utf8", "UTF-8"),
        ("truncated sequence", raw + b"\xe2\x82", "not_utf8", "UTF-8"),
        ("UTF-16 with BOM", raw.decode().encode("utf-16"), "not_utf8", "UTF-8"),
        (
            "unpaired surrogate escape",
            raw.replace(view["category"].encode(), b"\\ud800"),
            "invalid_json",
            "surrogate",
        ),
        (
            "NUL escape in customer_id",
            raw.replace(customer.encode(), customer.encode() + b"\\u0000", 1),
            "validation_failed",
            "customer_id",
        ),
        (
            "bidi override in event_id",
            encode(view | {"event_id": "evil\u202etxt.exe"}),
            "validation_failed",
            "event_id",
        ),
    ]
    label, value, reason, named = cases[n % len(cases)]
    return Poison(label, "clickstream", key, value, reason, named)


def _family_nesting(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    key = customer.encode()
    view = event_of_type(rng, "page_view", customer, at)
    order = event_of_type(rng, "order_completed", customer, at)
    deep = 100_000
    cases: list[tuple[str, str, bytes, str, str]] = [
        (
            f"{deep:,} nested arrays",
            "clickstream",
            b"[" * deep + b"]" * deep,
            "invalid_json",
            "depth",
        ),
        (
            f"{deep:,} nested arrays in a field",
            "clickstream",
            _splice(view, "extra", b"[" * deep + b"]" * deep),
            "invalid_json",
            "depth",
        ),
        (
            "30,000 nested objects in a field",
            "clickstream",
            _splice(view, "extra", b'{"a":' * 30_000 + b"1" + b"}" * 30_000),
            "invalid_json",
            "depth",
        ),
        (
            "1,000 nested arrays in a field (within orjson's limit, past pydantic's)",
            "clickstream",
            _splice(view, "extra", b"[" * 1_000 + b"]" * 1_000),
            "invalid_json",
            "recursion",
        ),
        (
            "1,000 nested arrays as the order lines",
            "cart",
            encode(order)[:-1].replace(
                b'"lines":[', b'"lines":[' + b"[" * 1_000 + b"]" * 1_000 + b","
            )
            + b"}",
            "invalid_json",
            "recursion",
        ),
        (
            "1,000 nested arrays as the type tag",
            "clickstream",
            encode(view | {"type": None}).replace(
                b'"type":null', b'"type":' + b"[" * 1_000 + b"]" * 1_000
            ),
            "unknown_type",
            "type",
        ),
        (
            "1,000 nested arrays alone",
            "cart",
            b"[" * 1_000 + b"]" * 1_000,
            "not_an_object",
            "array",
        ),
    ]
    label, kind, raw, reason, named = cases[n % len(cases)]
    return Poison(label, kind, key, raw, reason, named)


def _family_numbers(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    key = customer.encode()
    product = event_of_type(rng, "product_view", customer, at)
    add = event_of_type(rng, "cart_add", customer, at)
    search = event_of_type(rng, "search", customer, at)

    def price(raw: bytes) -> bytes:
        return _splice({k: v for k, v in product.items() if k != "price"}, "price", raw)

    def quantity(raw: bytes) -> bytes:
        return _splice({k: v for k, v in add.items() if k != "quantity"}, "quantity", raw)

    cases: list[tuple[str, str, bytes, str, str]] = [
        ("price 10**400", "clickstream", price(str(10**400).encode()), "invalid_json", "number"),
        ("quantity 1e400", "cart", quantity(b"1e400"), "invalid_json", "number"),
        ("price -1e400", "clickstream", price(b"-1e400"), "invalid_json", "number"),
        ("price NaN", "clickstream", price(b"NaN"), "invalid_json", "JSON"),
        ("price Infinity", "clickstream", price(b"Infinity"), "invalid_json", "JSON"),
        (
            "quantity 10**20",
            "cart",
            quantity(str(10**20).encode()),
            "validation_failed",
            "quantity",
        ),
        ("quantity 2**64", "cart", quantity(str(2**64).encode()), "validation_failed", "quantity"),
        ("quantity 1e300", "cart", quantity(b"1e300"), "validation_failed", "quantity"),
        ("quantity 2.5", "cart", quantity(b"2.5"), "validation_failed", "quantity"),
        ("quantity -1", "cart", quantity(b"-1"), "validation_failed", "quantity"),
        ("price 1e308", "clickstream", price(b"1e308"), "validation_failed", "price"),
        (
            "price of 400 digits",
            "clickstream",
            price(b'"' + b"9" * 400 + b'"'),
            "validation_failed",
            "price",
        ),
        ("price NaN string", "clickstream", price(b'"NaN"'), "validation_failed", "price"),
        ("price -0.01", "clickstream", price(b"-0.01"), "validation_failed", "price"),
        (
            "results_count 10**300",
            "clickstream",
            _splice(search, "results_count", str(10**300).encode()),
            "validation_failed",
            "results_count",
        ),
    ]
    label, kind, raw, reason, named = cases[n % len(cases)]
    return Poison(label, kind, key, raw, reason, named)


def _family_huge(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    key = customer.encode()
    view = event_of_type(rng, "page_view", customer, at)
    big = 200 * 1024  # under the size limit: the decoder must look inside
    cases: list[tuple[str, str, bytes, str, str]] = [
        (
            "1 MiB string in an unknown field",
            "clickstream",
            encode(view | {"padding": "x" * MIB}),
            "too_large",
            "bytes",
        ),
        (
            "1 MiB title",
            "clickstream",
            encode(view | {"title": "é" * (MIB // 2)}),
            "too_large",
            "bytes",
        ),
        ("1 MiB of invalid UTF-8", "email", b"\xff" * MIB, "too_large", "bytes"),
        ("1 MiB of open brackets", "cart", b"[" * MIB, "too_large", "bytes"),
        (
            "one byte over the limit",
            "clickstream",
            _padded(view, MAX_EVENT_BYTES + 1),
            "too_large",
            f"{MAX_EVENT_BYTES + 1} bytes",
        ),
        (
            "200 KiB title",
            "clickstream",
            encode(view | {"title": "t" * big}),
            "validation_failed",
            "title",
        ),
        (
            "200 KiB customer_id",
            "clickstream",
            encode(view | {"customer_id": "c" * big}),
            "validation_failed",
            "customer_id",
        ),
        (
            "200 KiB type tag",
            "clickstream",
            encode(view | {"type": "t" * big}),
            "unknown_type",
            "type",
        ),
        (
            "120,000 order lines of junk",
            "cart",
            encode(event_of_type(rng, "order_completed", customer, at) | {"lines": [0] * 120_000}),
            "validation_failed",
            "lines",
        ),
    ]
    label, kind, raw, reason, named = cases[n % len(cases)]
    return Poison(label, kind, key, raw, reason, named)


def _padded(event: Event, size: int) -> bytes:
    """``event`` with an unknown field padding it to exactly ``size`` bytes."""
    bare = encode(event | {"padding": ""})
    return encode(event | {"padding": "x" * (size - len(bare))})


def _family_values(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    key = customer.encode()
    view = event_of_type(rng, "page_view", customer, at)
    add = event_of_type(rng, "cart_add", customer, at)
    cases: list[tuple[str, str, Event, str]] = [
        (
            "naive occurred_at",
            "clickstream",
            view | {"occurred_at": "2026-11-02T09:00:00"},
            "occurred_at",
        ),
        (
            "occurred_at past year 9999 in UTC",
            "clickstream",
            view | {"occurred_at": "9999-12-31T23:59:59-23:59"},
            "occurred_at",
        ),
        (
            "occurred_at in year 1 (the watermark would overflow)",
            "clickstream",
            view | {"occurred_at": "0001-01-01T00:00:00Z"},
            "occurred_at",
        ),
        (
            "occurred_at in 1899",
            "cart",
            add | {"occurred_at": "1899-12-31T23:59:59Z"},
            "occurred_at",
        ),
        (
            "occurred_at in 2100",
            "clickstream",
            view | {"occurred_at": "2100-01-01T00:00:00Z"},
            "occurred_at",
        ),
        (
            "occurred_at on 30 February",
            "clickstream",
            view | {"occurred_at": "2026-02-30T10:00:00Z"},
            "occurred_at",
        ),
        ("occurred_at in words", "clickstream", view | {"occurred_at": "yesterday"}, "occurred_at"),
        ("schema_version 2", "clickstream", view | {"schema_version": 2}, "schema_version"),
        ("empty customer_id", "clickstream", view | {"customer_id": ""}, "customer_id"),
        ("blank customer_id", "clickstream", view | {"customer_id": "   "}, "customer_id"),
        (
            "url with a javascript scheme",
            "clickstream",
            view | {"url": "javascript:alert(1)"},
            "url",
        ),
        ("currency XXX", "cart", add | {"currency": "XXX"}, "currency"),
        ("currency in lower case", "cart", add | {"currency": "eur"}, "currency"),
        (
            "order without lines",
            "cart",
            event_of_type(rng, "order_completed", customer, at) | {"lines": []},
            "lines",
        ),
        (
            "checkout value without currency",
            "cart",
            event_of_type(rng, "checkout_started", customer, at) | {"value": "10.00"},
            "currency",
        ),
        (
            "bounce of an unknown type",
            "email",
            event_of_type(rng, "email_bounce", customer, at) | {"bounce_type": "medium"},
            "bounce_type",
        ),
        (
            "consent on another channel",
            "customers",
            event_of_type(rng, "consent_changed", customer, at) | {"channel": "sms"},
            "channel",
        ),
        (
            "unknown time zone",
            "customers",
            event_of_type(rng, "profile_attributes", customer, at) | {"time_zone": "Mars/Olympus"},
            "time_zone",
        ),
        (
            "attributes that say nothing",
            "customers",
            {
                k: v
                for k, v in event_of_type(rng, "profile_attributes", customer, at).items()
                if k not in ("locale", "time_zone")
            },
            "time_zone",
        ),
    ]
    label, kind, event, named = cases[n % len(cases)]
    return Poison(label, kind, key, encode(event), "validation_failed", named)


def _family_keys(rng: random.Random, customer: str, at: datetime, n: int) -> Poison:
    event = event_of_type(rng, "email_open", customer, at)
    cases: list[tuple[str, bytes | None, str]] = [
        ("no key", None, "no key"),
        ("another customer's key", f"{customer}-other".encode(), "does not match"),
        ("key with a trailing space", f"{customer} ".encode(), "does not match"),
        ("key not UTF-8", customer.encode() + b"\xff", "does not match"),
    ]
    label, key, named = cases[n % len(cases)]
    return Poison(label, "email", key, encode(event), "key_mismatch", named)


PoisonFamily = Callable[[random.Random, str, datetime, int], Poison]

POISON_FAMILIES: dict[str, PoisonFamily] = {
    "wrong_type": _family_wrong_type,
    "missing": _family_missing,
    "message": _family_message,
    "utf8": _family_utf8,
    "nesting": _family_nesting,
    "numbers": _family_numbers,
    "huge": _family_huge,
    "values": _family_values,
    "keys": _family_keys,
}
"""Every kind of garbage but one (events for erased customers need the erased ids)."""

# One slot per turn of the rotation; a wrong type in every field needs the most turns.
_ROTATION = (
    "wrong_type",
    "message",
    "wrong_type",
    "missing",
    "utf8",
    "wrong_type",
    "nesting",
    "numbers",
    "wrong_type",
    "huge",
    "values",
    "wrong_type",
    "keys",
    ERASED,
)


def poison_message(
    rng: random.Random, customer: str, index: int, erased: Sequence[str], at: datetime
) -> Poison:
    """The ``index``-th piece of garbage, in a rotation through every kind.

    ``customer`` is whose key the garbage is sent under (the garbage is about
    a live customer, who must not be harmed by it); ``erased`` lists customers
    already erased, for the events that must be skipped without a trace.
    """
    family = _ROTATION[index % len(_ROTATION)]
    turn = index // len(_ROTATION)
    if family == ERASED:
        who = erased[turn % len(erased)]
        kind = KINDS[turn % len(KINDS)]
        event = valid_event(rng, kind, who, at)
        return Poison(
            f"{event['type']} for an erased customer", kind, who.encode(), encode(event), ERASED, ""
        )
    # Several slots per turn: number the family's own occurrences.
    n = turn * _ROTATION.count(family) + _ROTATION[: index % len(_ROTATION)].count(family)
    return POISON_FAMILIES[family](rng, customer, at, n)
