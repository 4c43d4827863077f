"""Cart and order events, published by the shop's cart and order services.

They drive the cart in the profile (abandoned-cart triggers), the purchase
history behind RFM, and the labels the intent models learn from: an
``order_completed`` is the positive outcome.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, Self

from pydantic import AfterValidator, Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from schemas.common import Currency, Id, Money, Quantity
from schemas.envelope import Envelope, Payload

__all__ = [
    "CART_ADAPTER",
    "MAX_ORDER_LINES",
    "CartAdd",
    "CartEvent",
    "CartRemove",
    "CheckoutStarted",
    "OrderCompleted",
    "OrderLine",
]

MAX_ORDER_LINES: Final = 500
"""Most lines one order may have; bounds the work and memory per message."""


class _CartChange(Envelope):
    cart_id: Id
    product_id: Id
    quantity: Quantity
    unit_price: Money
    currency: Currency


class CartAdd(_CartChange):
    """Units of a product were added to a cart."""

    type: Literal["cart_add"] = "cart_add"


class CartRemove(_CartChange):
    """Units of a product were removed from a cart."""

    type: Literal["cart_remove"] = "cart_remove"


class CheckoutStarted(Envelope):
    """The shopper began checking a cart out; ``value`` is the cart total if known."""

    type: Literal["checkout_started"] = "checkout_started"
    cart_id: Id
    value: Money | None = None
    currency: Currency | None = None

    @model_validator(mode="after")
    def _value_has_currency(self) -> Self:
        if (self.value is None) != (self.currency is None):
            raise PydanticCustomError(
                "value_without_currency", "value and currency must be given together"
            )
        return self


class OrderLine(Payload):
    """One product on an order."""

    product_id: Id
    quantity: Quantity
    unit_price: Money


def _at_least_one_line(lines: tuple[OrderLine, ...]) -> tuple[OrderLine, ...]:
    # Not Field(min_length=1): pydantic checks that length after dropping the
    # lines that failed, so one bad line would also report "no lines".
    if not lines:
        raise PydanticCustomError("too_short", "An order should have at least 1 line")
    return lines


class OrderCompleted(Envelope):
    """An order was placed.

    ``total`` is what the customer paid and is *not* checked against the sum
    of the lines: shipping, taxes, discounts, gift cards and rounding all sit
    between the two, and the order service, not Nudge, is the authority on
    the amount. Lines may repeat a product (variants, bundles).
    """

    type: Literal["order_completed"] = "order_completed"
    order_id: Id
    lines: Annotated[
        tuple[OrderLine, ...],
        Field(max_length=MAX_ORDER_LINES, json_schema_extra={"minItems": 1}),
        AfterValidator(_at_least_one_line),
    ]
    total: Money
    currency: Currency
    cart_id: Id | None = Field(default=None, description="The cart this order closes, if any.")


CartEvent = Annotated[
    CartAdd | CartRemove | CheckoutStarted | OrderCompleted,
    Field(discriminator="type"),
]
"""Any event of the cart topic, told apart by ``type``."""

CART_ADAPTER: Final[TypeAdapter[CartEvent]] = TypeAdapter(CartEvent)
"""Validates and describes (JSON Schema) the cart topic's messages."""
