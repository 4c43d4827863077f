"""Simulated customers and the hidden traits that drive what they do.

The traits are latent on purpose: Nudge never sees them, only the behaviour
they cause, so a model that learns to rank customers by purchase intent can
be scored against the truth. Each customer is drawn from its own random
stream (seeded by the run seed and the customer's index), so customer 42 is
the same person whatever the population size.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

__all__ = ["ZONES", "Customer", "customer_id", "customer_rng", "draw_customer"]

ZONES: Final[tuple[tuple[str, str, float], ...]] = (
    # (IANA zone, locale, share of customers)
    ("Europe/Paris", "fr-FR", 0.30),
    ("Europe/Berlin", "de-DE", 0.20),
    ("Europe/London", "en-GB", 0.20),
    ("America/New_York", "en-US", 0.15),
    ("America/Los_Angeles", "en-US", 0.08),
    ("Asia/Tokyo", "ja-JP", 0.04),
    ("Australia/Sydney", "en-AU", 0.03),
)
"""Where customers live: a European shop with some customers abroad."""

_ZONE_WEIGHTS: Final = tuple(share for _, _, share in ZONES)


@dataclass(frozen=True, slots=True)
class Customer:
    """A shopper and the traits behind their behaviour (all in [0, 1]).

    ``intent`` is the latent purchase intent: it drives how often they visit,
    how much they browse, what they add to a cart and whether they buy.
    ``price_sensitivity`` pushes them towards cheaper products and away from
    adding expensive ones; ``responsiveness`` is how much email moves them.
    """

    index: int
    customer_id: str
    intent: float
    price_sensitivity: float
    responsiveness: float
    time_zone: str
    locale: str
    email_consent: bool


def customer_id(index: int) -> str:
    """Name the customer at ``index``: readable, sortable, stable across runs."""
    return f"cust-{index:06d}"


def customer_rng(seed: int, index: int) -> random.Random:
    """Seed one customer's random stream; a string seed is hashed with SHA-512, so stable."""
    return random.Random(f"nudge-sim:{seed}:customer:{index}")  # noqa: S311 - simulation


def draw_customer(rng: random.Random, index: int) -> Customer:
    """Draw one customer's traits from their own stream.

    Intent is Beta(1.2, 4.5): most customers rarely buy and a few are keen
    (mean about 0.21), which is the skew real shops see.
    """
    zone, locale, _ = rng.choices(ZONES, weights=_ZONE_WEIGHTS)[0]
    responsiveness = rng.betavariate(1.5, 3.0)
    return Customer(
        index=index,
        customer_id=customer_id(index),
        intent=rng.betavariate(1.2, 4.5),
        price_sensitivity=rng.betavariate(2.0, 2.0),
        responsiveness=responsiveness,
        time_zone=zone,
        locale=locale,
        # Engaged readers are likelier to have opted in.
        email_consent=rng.random() < 0.55 + 0.3 * responsiveness,
    )
