"""Cart abandonment, scenario by scenario: timed events in, cart triggers out.

Each row: the story, the events (in arrival order, times on 1 May 2024 UTC
unless a day is given), the customer's trigger history, and the expected
cart triggers as (time, cart id, lines as (product, quantity), value).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import pytest

from schemas.triggers import CartItem, CartPayload
from streams.core.policy import PolicyConfig
from streams.core.triggers import cart_abandonment
from streams.core.triggers.base import Deadline, TriggerConfig
from tests.unit.test_trigger_timeline import (
    CART,
    CUSTOMER,
    OPEN,
    Timed,
    add,
    at,
    checkout,
    consent,
    history,
    of_type,
    order,
    page,
    profile_of,
    remove,
    run,
    scored,
    view,
)

pytestmark = pytest.mark.unit

Line = tuple[str, int]


class Case(NamedTuple):
    story: str
    events: list[Timed]
    expected: list[tuple[datetime, str, tuple[Line, ...], str]]
    history: dict[str, datetime] | None = None
    config: TriggerConfig = TriggerConfig()


ONE = (("sku-1", 1),)
CASES = [
    Case(
        "adds at 10:00, nothing by 11:00 -> one cart trigger with the line and value",
        [add("10:00")],
        [(at("11:00"), "cart-1", ONE, "20")],
    ),
    Case(
        "adds at 10:00 and 10:30 -> one trigger at 11:30 with both lines",
        [add("10:00", "sku-1"), add("10:30", "sku-2", price="5.50", quantity=2)],
        [(at("11:30"), "cart-1", (("sku-1", 1), ("sku-2", 2)), "31.00")],
    ),
    Case("starts checkout at 10:20 -> cancelled", [add("10:00"), checkout("10:20")], []),
    Case(
        "orders the cart at 10:40 -> cancelled", [add("10:00"), order("10:40", cart="cart-1")], []
    ),
    Case("orders without a cart id at 10:40 -> cancelled", [add("10:00"), order("10:40")], []),
    Case(
        "orders exactly at 11:00 -> too late, the deadline wins",
        [add("10:00"), order("11:00", cart="cart-1")],
        [(at("11:00"), "cart-1", ONE, "20")],
    ),
    Case("empties the cart at 10:20 -> cancelled", [add("10:00"), remove("10:20")], []),
    Case(
        "removes one of two units at 10:20 -> trigger at 11:20 with one unit",
        [add("10:00", quantity=2), remove("10:20")],
        [(at("11:20"), "cart-1", ONE, "20")],
    ),
    Case(
        "a cart worth 30 under a minimum of 50 -> nothing",
        [add("10:00", price="30")],
        [],
        config=TriggerConfig(cart_min_value=Decimal(50)),
    ),
    Case(
        "a cart that reaches the minimum at 10:30 -> trigger at 11:30",
        [add("10:00", price="30"), add("10:30", "sku-2", price="30")],
        [(at("11:30"), "cart-1", (("sku-1", 1), ("sku-2", 1)), "60")],
        config=TriggerConfig(cart_min_value=Decimal(50)),
    ),
    Case(
        "cart-triggered 3 days ago -> nothing (7-day cooldown)",
        [add("10:00")],
        [],
        {"cart_abandonment": at("11:00", day=-3)},
    ),
    Case(
        "cart-triggered exactly 7 days before -> trigger",
        [add("10:00")],
        [(at("11:00"), "cart-1", ONE, "20")],
        {"cart_abandonment": at("11:00", day=-7)},
    ),
    Case(
        "browse-triggered an hour ago -> the cart rule does not care (the policy caps)",
        [add("10:00")],
        [(at("11:00"), "cart-1", ONE, "20")],
        {"browse_abandonment": at("10:00")},
    ),
    Case(
        "the same cart changed again the next day -> once per cart (cooldown)",
        [add("10:00"), add("10:00", "sku-2", day=1, session="s2")],
        [(at("11:00"), "cart-1", ONE, "20")],
    ),
    Case(
        "the same cart, still open, changed again after the cooldown -> still once per cart",
        [add("10:00"), add("10:00", "sku-2", day=8, session="s2")],
        [(at("11:00"), "cart-1", ONE, "20")],
    ),
    Case(
        "replaced by cart-2 after the cooldown, then cart-1 reopened -> cart-1 not again",
        [
            add("10:00"),
            add("10:00", "sku-2", cart="cart-2", day=8, session="s2"),
            add("10:00", "sku-3", day=16, session="s3"),
        ],
        [(at("11:00"), "cart-1", ONE, "20"), (at("11:00", day=8), "cart-2", (("sku-2", 1),), "20")],
    ),
    Case(
        "a new cart after the first was bought and the cooldown passed -> its own trigger",
        [add("10:00"), order("12:00", cart="cart-1"), add("10:00", cart="cart-2", day=8)],
        [(at("11:00"), "cart-1", ONE, "20"), (at("11:00", day=8), "cart-2", ONE, "20")],
    ),
    Case(
        "a new cart replaces the first at 10:30 -> only the new cart triggers",
        [add("10:00"), add("10:30", "sku-2", cart="cart-2")],
        [(at("11:30"), "cart-2", (("sku-2", 1),), "20")],
    ),
    Case(
        "a stale add of a bought cart arrives late -> nothing reopens",
        [add("10:00"), order("10:30", cart="cart-1"), add("10:20", "sku-2")],
        [],
    ),
    Case(
        "product views do not move the cart's deadline",
        [add("10:00"), view("10:30"), view("10:50")],
        [(at("11:00"), "cart-1", ONE, "20")],
    ),
    Case(
        "a 2-hour wait -> trigger at 12:00",
        [add("10:00")],
        [(at("12:00"), "cart-1", ONE, "20")],
        config=TriggerConfig(cart_wait=timedelta(hours=2)),
    ),
]


# One decision per cart, through the policy: whatever the outcome (sent,
# held out, suppressed, capped without a second offer), the cart's trigger id
# gets one final decision, however often the cart changes afterwards. Rows:
# (offered at, cart, outcome, attempt) of every cart decision.
Decided = tuple[datetime, str, str, int]


class DecisionCase(NamedTuple):
    story: str
    events: list[Timed]
    expected: list[Decided]
    policy: PolicyConfig = OPEN


DECISIONS = [
    DecisionCase(
        "consented: sent at 11:00; changed again after the cooldown -> no second decision",
        [consent(), add("10:00"), add("10:00", "sku-2", day=8, session="s2")],
        [(at("11:00"), "cart-1", "sent", 0)],
    ),
    DecisionCase(
        "no consent: suppressed at 11:00; changed again the next day -> no second decision",
        [add("10:00"), add("10:00", "sku-2", day=1, session="s2")],
        [(at("11:00"), "cart-1", "suppressed", 0)],
    ),
    DecisionCase(
        "held out: one holdout decision, the cart changing later gives none",
        [consent(), add("10:00"), add("10:00", "sku-2", day=8, session="s2")],
        [(at("11:00"), "cart-1", "holdout", 0)],
        PolicyConfig(holdout_share=1.0),
    ),
    DecisionCase(
        "capped by a discount offer at 10:00 -> offered once more when the cap frees, sent",
        [consent(), scored(page("10:00"), 0.9), add("10:05")],
        [(at("11:05"), "cart-1", "capped", 0), (at("02:00", day=1), "cart-1", "sent", 1)],
    ),
    DecisionCase(
        "capped, the cap frees too late for a second offer -> final, a later change gives none",
        [
            consent(),
            scored(page("10:00"), 0.9),
            add("10:05"),
            add("10:00", "sku-2", day=3, session="s2"),
        ],
        [(at("11:05"), "cart-1", "capped", 0)],
        PolicyConfig(holdout_share=0, cap_window=timedelta(hours=48)),
    ),
]


@pytest.mark.parametrize("case", DECISIONS, ids=[case.story for case in DECISIONS])
def test_one_decision_per_cart(case: DecisionCase) -> None:
    timeline = run(case.events, policy=case.policy)
    got = [
        (f.candidate.offered_at, f.candidate.key, f.decision.outcome.value, f.candidate.attempt)
        for f in of_type(timeline, CART)
        if f.decision is not None
    ]
    assert got == case.expected


REASONS = [
    (
        "one unit -> singular",
        [add("10:00")],
        TriggerConfig(),
        "Cart of 1 item worth 20.00 EUR left 60 min without checkout",
    ),
    (
        "units of every line, also those the payload leaves out, and the whole value",
        [add("10:00", "sku-1", price="12.5", quantity=2), add("10:01", "sku-2"), add("10:02", "x")],
        TriggerConfig(cart_max_lines=1, cart_wait=timedelta(hours=2)),
        "Cart of 4 items worth 65.00 EUR left 120 min without checkout",
    ),
]


@pytest.mark.parametrize(
    ("events", "config", "expected"), [r[1:] for r in REASONS], ids=[r[0] for r in REASONS]
)
def test_the_reason_counts_units_and_value(
    events: list[Timed], config: TriggerConfig, expected: str
) -> None:
    (fired,) = of_type(run(events, config=config), CART)
    assert fired.candidate.reason == expected


def _payload(payload: object) -> CartPayload:
    assert isinstance(payload, CartPayload)
    return payload


@pytest.mark.parametrize("case", CASES, ids=[case.story for case in CASES])
def test_cart_scenarios(case: Case) -> None:
    states = history(**case.history) if case.history else None
    timeline = run(case.events, config=case.config, states=states)
    got = []
    for fired in of_type(timeline, CART):
        payload = _payload(fired.candidate.payload)
        lines = tuple((line.product_id, line.quantity) for line in payload.lines)
        got.append((fired.candidate.occurred_at, payload.cart_id, lines, str(payload.value)))
    assert got == [(when, cart, lines, str(Decimal(v))) for when, cart, lines, v in case.expected]


def test_the_trigger_carries_lines_count_value_and_currency() -> None:
    events = [(add("10:00", "sku-1", price="12.50", quantity=2), 0.9)]
    (fired,) = of_type(run(events), CART)
    payload = _payload(fired.candidate.payload)
    assert payload == CartPayload(
        cart_id="cart-1",
        lines=(CartItem(product_id="sku-1", quantity=2, unit_price=Decimal("12.50")),),
        line_count=1,
        value=Decimal("25.00"),
        currency="EUR",
    )
    assert (fired.candidate.key, fired.candidate.tier.value) == ("cart-1", "vip")


def test_a_long_cart_carries_the_first_lines_and_counts_them_all() -> None:
    events = [add(f"10:{n:02d}", f"sku-{n}") for n in range(8)]
    (fired,) = of_type(run(events, config=TriggerConfig(cart_max_lines=3)), CART)
    payload = _payload(fired.candidate.payload)
    assert [line.product_id for line in payload.lines] == ["sku-0", "sku-1", "sku-2"]
    assert (payload.line_count, payload.value) == (8, Decimal(160))


# --- the rule's entry points, called directly ----------------------------------


CONFIG = TriggerConfig()


def test_an_order_cancels_the_cart_it_closed() -> None:
    closing = order("10:40")
    profile = profile_of(add("10:00"), closing)
    result = cart_abandonment.on_event(profile, closing, None, at("10:40"), CONFIG)
    assert [ref.key for ref in result.deadlines_cancelled] == ["cart-1"]


def test_a_deadline_called_early_stays_pending() -> None:
    deadline = Deadline(customer_id=CUSTOMER, rule=CART, key="cart-1", due_at=at("11:00"))
    result = cart_abandonment.on_deadline(
        profile_of(add("10:00")), deadline, None, at("10:30"), CONFIG
    )
    assert (result.deadlines_set, result.candidates) == ((deadline,), ())


def test_a_late_change_sets_no_deadline_already_passed() -> None:
    late = add("10:00")
    result = cart_abandonment.on_event(profile_of(late), late, None, at("11:30"), CONFIG)
    assert result == cart_abandonment.on_event(profile_of(late), late, None, at("11:30"), CONFIG)
    assert result.deadlines_set == ()
