"""The open cart: what the shopper is about to buy (the abandoned-cart rule's state).

Rules, in event time where it matters:

* ``cart_add`` adds units (the line takes the latest unit price),
  ``cart_remove`` subtracts them (the line goes at zero or below),
  ``checkout_started`` marks the cart.
* An event for another cart than the open one replaces it, unless it is
  older than the open cart's last change (a stale event of an old cart).
* ``order_completed`` with the open cart's id, or without a cart id at all
  (if not older than the cart's last change), closes the cart. Closed cart
  ids are remembered (the last few) so a late event of a bought cart does
  not reopen it.

Unlike the purchase history, the cart is not order-independent: a removal
that arrives before the addition it undoes finds nothing to remove.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, TypeAlias

from pydantic import Field

from schemas.cart import CartAdd, CartRemove, CheckoutStarted, OrderCompleted
from schemas.common import UtcDatetime
from streams.core.frozen import FrozenModel
from streams.core.money import MONEY, ZERO

__all__ = ["Cart", "CartEvent", "CartLine", "fold_cart"]

CartEvent: TypeAlias = CartAdd | CartRemove | CheckoutStarted | OrderCompleted


class CartLine(NamedTuple):
    """Units of one product in the cart, at the latest unit price added."""

    quantity: int
    unit_price: Decimal


class Cart(FrozenModel):
    """The customer's open cart; ``lines`` maps a product id to its line."""

    cart_id: str
    currency: str | None = None
    lines: dict[str, CartLine] = Field(default_factory=dict)
    changed_at: UtcDatetime
    checkout_started_at: UtcDatetime | None = None

    @property
    def value(self) -> Decimal:
        """The sum of quantity times unit price over the lines (exact)."""
        total = ZERO
        for line in self.lines.values():
            total = MONEY.add(total, MONEY.multiply(Decimal(line.quantity), line.unit_price))
        return total


def _remember_closed(closed: tuple[str, ...], cart_id: str, bound: int) -> tuple[str, ...]:
    if cart_id in closed:
        return closed
    return (*closed, cart_id)[-bound:]


def _close(
    cart: Cart | None, closed: tuple[str, ...], order: OrderCompleted, bound: int
) -> tuple[Cart | None, tuple[str, ...]]:
    if order.cart_id is not None:
        closed = _remember_closed(closed, order.cart_id, bound)
        if cart is not None and cart.cart_id == order.cart_id:
            return None, closed
        return cart, closed
    if cart is not None and order.occurred_at >= cart.changed_at:
        return None, _remember_closed(closed, cart.cart_id, bound)
    return cart, closed


def _change(cart: Cart, event: CartAdd | CartRemove | CheckoutStarted, at: datetime) -> Cart:
    update: dict[str, object] = {"changed_at": max(cart.changed_at, at)}
    match event:
        case CartAdd():
            line = cart.lines.get(event.product_id)
            quantity = event.quantity + (line.quantity if line else 0)
            update["lines"] = {**cart.lines, event.product_id: CartLine(quantity, event.unit_price)}
            update["currency"] = event.currency
        case CartRemove():
            line = cart.lines.get(event.product_id)
            if line is not None:
                lines = dict(cart.lines)
                left = line.quantity - event.quantity
                if left > 0:
                    lines[event.product_id] = CartLine(left, line.unit_price)
                else:
                    del lines[event.product_id]
                update["lines"] = lines
        case CheckoutStarted():
            started = cart.checkout_started_at
            update["checkout_started_at"] = at if started is None else max(started, at)
    return cart.updated(update)


def fold_cart(
    cart: Cart | None, closed: tuple[str, ...], event: CartEvent, max_closed: int
) -> tuple[Cart | None, tuple[str, ...]]:
    """Fold one cart or order event; return the open cart and the closed cart ids."""
    if isinstance(event, OrderCompleted):
        return _close(cart, closed, event, max_closed)
    at = event.occurred_at
    if event.cart_id in closed:
        return cart, closed
    if cart is None or cart.cart_id != event.cart_id:
        if cart is not None and at < cart.changed_at:
            return cart, closed
        cart = Cart(cart_id=event.cart_id, changed_at=at)
    return _change(cart, event, at), closed
