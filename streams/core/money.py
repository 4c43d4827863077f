"""Decimal arithmetic for money that does not depend on the thread's context.

``Decimal`` operators use the calling thread's context (28 digits by
default, changeable by anyone). Sums of amounts of up to 18 digits stay exact
with 50 digits of precision, and rounding is only ever done on purpose, with
:func:`quantize4`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

__all__ = ["MONEY", "ZERO", "quantize4"]

MONEY: Final = Context(prec=50, rounding=ROUND_HALF_EVEN)
"""The context every money operation of the core goes through."""

ZERO: Final = Decimal(0)

_FOUR_PLACES: Final = Decimal("0.0001")


def quantize4(value: Decimal) -> Decimal:
    """Round to 4 decimal places, half to even (banker's rounding)."""
    return value.quantize(_FOUR_PLACES, context=MONEY)
