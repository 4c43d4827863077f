"""The simulated shop's products: categories, realistic prices, popularity.

Prices follow a log-normal law inside each category's range and end in .99
or .00, as shop prices do; popularity is Zipf-like (a few best sellers).
Price-sensitive customers see the catalogue through weights that favour cheap
products, precomputed for a handful of sensitivity levels so that drawing a
product costs one bisection.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = ["CATEGORIES", "SENSITIVITY_LEVELS", "Catalogue", "Product", "build_catalogue"]

CATEGORIES: Final[tuple[tuple[str, float, float, tuple[str, ...]], ...]] = (
    # (category, typical lowest price, typical highest price, words for searches)
    ("shoes", 35.0, 220.0, ("sneakers", "boots", "sandals", "loafers")),
    ("bags", 25.0, 320.0, ("tote", "backpack", "leather bag", "clutch")),
    ("outerwear", 60.0, 450.0, ("raincoat", "down jacket", "trench", "parka")),
    ("tops", 12.0, 80.0, ("t-shirt", "linen shirt", "hoodie", "sweater")),
    ("trousers", 30.0, 150.0, ("jeans", "chinos", "joggers", "wide leg")),
    ("accessories", 8.0, 90.0, ("scarf", "belt", "cap", "sunglasses")),
    ("home", 10.0, 200.0, ("candle", "throw", "vase", "bedding")),
    ("beauty", 6.0, 70.0, ("serum", "perfume", "lip balm", "shampoo")),
)
"""Categories with their price ranges and the words shoppers search for."""

SENSITIVITY_LEVELS: Final = 5
"""Price sensitivity is bucketed into this many levels of precomputed weights."""

_CENT: Final = Decimal("0.01")
_COLOURS: Final = ("black", "white", "red", "navy", "green", "beige", "grey")


@dataclass(frozen=True, slots=True)
class Product:
    """One product on sale."""

    product_id: str
    category: str
    title: str
    price: Decimal
    slug: str
    rank: int


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Products plus cumulative draw weights per (sensitivity level, category or all)."""

    products: tuple[Product, ...]
    by_category: dict[str, tuple[Product, ...]]
    cum_weights: dict[tuple[int, str | None], tuple[float, ...]]

    def draw(self, rng: random.Random, sensitivity: float, category: str | None = None) -> Product:
        """Pick a product as a shopper of this price sensitivity would look at one."""
        level = min(int(sensitivity * SENSITIVITY_LEVELS), SENSITIVITY_LEVELS - 1)
        pool = self.products if category is None else self.by_category[category]
        weights = self.cum_weights[(level, category)]
        return pool[bisect.bisect(weights, rng.random() * weights[-1])]


def _price(rng: random.Random, low: float, high: float) -> Decimal:
    mid = math.sqrt(low * high)
    value = rng.lognormvariate(math.log(mid), math.log(high / low) / 4)
    value = min(max(value, low * 0.8), high * 1.3)
    whole = Decimal(max(int(value), 2))
    return (whole - _CENT if rng.random() < 0.7 else whole).quantize(_CENT)


def _weights(products: tuple[Product, ...], level: int) -> tuple[float, ...]:
    # Zipf popularity by rank (the catalogue is in popularity order), tilted
    # towards cheap products as sensitivity rises.
    tilt = 1.8 * (level + 0.5) / SENSITIVITY_LEVELS
    raw = ((1.0 / (1 + p.rank) ** 0.8) * (float(p.price) / 50.0) ** -tilt for p in products)
    return tuple(itertools.accumulate(raw))


def build_catalogue(seed: int, size: int) -> Catalogue:
    """Build the catalogue of a run; the same seed and size give the same products."""
    rng = random.Random(f"nudge-sim:{seed}:catalogue")  # noqa: S311 - simulation
    products = []
    for number in range(size):
        category, low, high, words = rng.choice(CATEGORIES)
        word, colour = rng.choice(words), rng.choice(_COLOURS)
        products.append(
            Product(
                product_id=f"sku-{number:05d}",
                category=category,
                title=f"{colour.title()} {word}",
                price=_price(rng, low, high),
                slug=f"{colour}-{word.replace(' ', '-')}-{number}",
                rank=number,
            )
        )
    everything = tuple(products)
    by_category = {
        name: tuple(p for p in everything if p.category == name) for name, *_ in CATEGORIES
    }
    by_category = {name: pool for name, pool in by_category.items() if pool}
    cum_weights: dict[tuple[int, str | None], tuple[float, ...]] = {}
    for level in range(SENSITIVITY_LEVELS):
        cum_weights[(level, None)] = _weights(everything, level)
        for name, pool in by_category.items():
            cum_weights[(level, name)] = _weights(pool, level)
    return Catalogue(everything, by_category, cum_weights)
