"""One browsing session: what a shopper looks at, adds to a cart, and buys.

Intent is what a model should be able to learn, so it drives every step:
a keener shopper browses longer, views more products, adds more of them and
is far likelier to check out and pay. Price sensitivity steers them towards
cheap products and away from adding dear ones. The whole session is decided
when it starts and returned as timed events plus its truth, so the caller can
drop a session that would run past the end of the simulation as one piece.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, Literal

from schemas import (
    CartAdd,
    CartRemove,
    CategoryView,
    CheckoutStarted,
    ConsentChanged,
    InboundEvent,
    OrderCompleted,
    OrderLine,
    PageView,
    ProductView,
    Search,
    TopicKind,
)
from streams.simulator.catalogue import CATEGORIES, Catalogue, Product
from streams.simulator.events import SITE, Stamper
from streams.simulator.population import Customer
from streams.simulator.records import Outcome, SessionTruth, SimulatedEvent

__all__ = ["CART_LIFETIME_MS", "Cart", "SessionResult", "Visit", "browse"]

CART_LIFETIME_MS: Final = 7 * 86_400_000
"""A cart untouched for a week is dropped by the shop; the next add starts a new one."""

_MS: Final = timedelta(milliseconds=1)
_CENT: Final = Decimal("0.01")
_SHIPPING: Final = Decimal("4.95")
_FREE_SHIPPING_FROM: Final = Decimal(60)
_DISCOUNT: Final = Decimal("0.10")
_REFERRERS: Final = (
    None,
    "https://www.google.com/",
    "https://www.google.com/",
    "https://www.instagram.com/",
    "android-app://com.google.android.gm",
)
_INFO_PAGES: Final = ("/help/shipping", "/help/returns", "/about", "/cart", "/account")
_CATEGORY_NAMES: Final = tuple(name for name, *_ in CATEGORIES)


@dataclass
class Cart:
    """The customer's open cart; it outlives a session until ordered or expired."""

    cart_id: str | None = None
    lines: dict[str, tuple[Product, int]] = field(default_factory=dict)
    touched_ms: int = 0

    def copy(self) -> Cart:
        """Copy the cart, so a session may change it without touching the original."""
        return Cart(self.cart_id, dict(self.lines), self.touched_ms)

    def subtotal(self) -> Decimal:
        """Sum of the lines at the prices they were added at."""
        return sum((p.price * qty for p, qty in self.lines.values()), Decimal(0))


@dataclass(frozen=True, slots=True)
class Visit:
    """How a session begins: when, with which intent and consent, from where."""

    session_id: str
    start_ms: int
    intent: float
    consented: bool
    source: Literal["organic", "email"]
    category: str | None = None
    referrer: str | None = None


@dataclass(frozen=True, slots=True)
class SessionResult:
    """A decided session: its events in time order, its truth and the state it leaves."""

    events: list[tuple[int, SimulatedEvent]]
    truth: SessionTruth
    cart: Cart
    opted_in: bool

    @property
    def end_ms(self) -> int:
        """Time of the session's last event."""
        return self.events[-1][0]


@dataclass(frozen=True, slots=True)
class Shop:
    """What every session of a run shares: the catalogue and the currency."""

    catalogue: Catalogue
    currency: str


def _gap(rng: random.Random) -> int:
    # Time between two clicks: log-normal, median about 30 s, capped at 10 min.
    return min(int(rng.lognormvariate(math.log(30_000), 0.8)), 600_000)


def _geometric(rng: random.Random, mean: float) -> int:
    # Number of failures before a success with the given mean; cheap and skewed.
    p = 1.0 / (1.0 + mean)
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


class _Session:
    """Builds one session's events; a class only to share the running state."""

    def __init__(
        self, shop: Shop, customer: Customer, visit: Visit, cart: Cart, stamp: Stamper
    ) -> None:
        self.shop, self.customer, self.visit, self.stamp = shop, customer, visit, stamp
        self.rng = stamp.rng
        self.cart = cart.copy()
        if self.cart.lines and visit.start_ms - self.cart.touched_ms > CART_LIFETIME_MS:
            self.cart = Cart()
        self.at = visit.start_ms
        self.events: list[tuple[int, SimulatedEvent]] = []
        self.added = False
        self.ordered = False
        self.category = visit.category

    def _env(self) -> dict[str, Any]:
        return self.stamp.envelope(self.at, self.visit.session_id)

    def _record(self, kind: TopicKind, event: InboundEvent) -> None:
        self.events.append((self.at, SimulatedEvent(kind, event)))

    def land(self) -> None:
        referrer: str | None
        if self.visit.source == "email":
            url = f"{SITE}/c/{self.category}?utm_source=email"
            referrer = "android-app://com.google.android.gm"
        elif self.rng.random() < 0.6:
            url, referrer = f"{SITE}/", self.rng.choice(_REFERRERS)
        else:
            self.category = self.rng.choice(_CATEGORY_NAMES)
            url, referrer = f"{SITE}/c/{self.category}", "https://www.google.com/"
        title = self.category.title() if self.category else "Home"
        self._record(
            TopicKind.clickstream, PageView(**self._env(), url=url, referrer=referrer, title=title)
        )

    def browse(self) -> None:
        rng, intent = self.rng, self.visit.intent
        for _ in range(min(1 + _geometric(rng, 1.0 + 9.0 * intent), 60)):
            self.at += _gap(rng)
            roll = rng.random()
            if roll < 0.55:
                self.product_view()
            elif roll < 0.77:
                self.category = rng.choice(_CATEGORY_NAMES)
                self._record(
                    TopicKind.clickstream, CategoryView(**self._env(), category=self.category)
                )
            elif roll < 0.89:
                self.search()
            elif self.cart.lines and rng.random() < 0.35:
                self.remove()
            else:
                url = SITE + rng.choice(_INFO_PAGES)
                self._record(TopicKind.clickstream, PageView(**self._env(), url=url))

    def product_view(self) -> None:
        rng, sensitivity = self.rng, self.customer.price_sensitivity
        in_category = self.category is not None and rng.random() < 0.7
        product = self.shop.catalogue.draw(rng, sensitivity, self.category if in_category else None)
        self._record(
            TopicKind.clickstream,
            ProductView(
                **self._env(),
                product_id=product.product_id,
                price=product.price,
                currency=self.shop.currency,
                category=product.category,
            ),
        )
        affordable = 1.0 / (1.0 + sensitivity * float(product.price) / 120.0)
        if rng.random() < (0.02 + 0.26 * self.visit.intent) * affordable:
            self.add(product)

    def add(self, product: Product) -> None:
        rng = self.rng
        self.at += 3_000 + rng.randrange(30_000)
        quantity = 1 if rng.random() < 0.86 else rng.choice((2, 2, 3))
        if self.cart.cart_id is None:
            self.cart.cart_id = f"cart-{self.visit.session_id[5:]}"
        self._record(
            TopicKind.cart,
            CartAdd(
                **self._env(),
                cart_id=self.cart.cart_id,
                product_id=product.product_id,
                quantity=quantity,
                unit_price=product.price,
                currency=self.shop.currency,
            ),
        )
        _, before = self.cart.lines.get(product.product_id, (product, 0))
        self.cart.lines[product.product_id] = (product, before + quantity)
        self.cart.touched_ms = self.at
        self.added = True

    def remove(self) -> None:
        product_id = self.rng.choice(sorted(self.cart.lines))
        product, quantity = self.cart.lines.pop(product_id)
        assert self.cart.cart_id is not None  # a cart with lines has an id
        self._record(
            TopicKind.cart,
            CartRemove(
                **self._env(),
                cart_id=self.cart.cart_id,
                product_id=product_id,
                quantity=quantity,
                unit_price=product.price,
                currency=self.shop.currency,
            ),
        )
        self.cart.touched_ms = self.at

    def search(self) -> None:
        rng = self.rng
        category, _, _, words = rng.choice(CATEGORIES)
        self.category = category
        query = rng.choice(words)
        if rng.random() < 0.3:
            query = f"{rng.choice(('black', 'red', 'cheap', 'warm', 'leather'))} {query}"
        results = rng.randrange(0, 4) if rng.random() < 0.08 else rng.randrange(4, 180)
        self._record(
            TopicKind.clickstream, Search(**self._env(), query=query, results_count=results)
        )

    def check_out(self) -> bool:
        """Maybe check the cart out; return whether the customer also opted in to email."""
        rng, intent = self.rng, self.visit.intent
        if not self.cart.lines or self.cart.cart_id is None:
            return False
        if rng.random() >= (0.06 + 0.7 * intent) * (1.0 if self.added else 0.3):
            return False
        self.at += _gap(rng)
        subtotal = self.cart.subtotal()
        cart_id = self.cart.cart_id
        self._record(
            TopicKind.cart,
            CheckoutStarted(
                **self._env(), cart_id=cart_id, value=subtotal, currency=self.shop.currency
            ),
        )
        if rng.random() >= 0.4 + 0.5 * intent:
            return False
        self.at += 45_000 + rng.randrange(240_000)
        total = subtotal if subtotal >= _FREE_SHIPPING_FROM else subtotal + _SHIPPING
        if rng.random() < 0.15:
            total -= (subtotal * _DISCOUNT).quantize(_CENT)
        lines = tuple(
            OrderLine(product_id=p.product_id, quantity=qty, unit_price=p.price)
            for p, qty in self.cart.lines.values()
        )
        self._record(
            TopicKind.cart,
            OrderCompleted(
                **self._env(),
                order_id=f"order-{self.visit.session_id[5:]}",
                lines=lines,
                total=total.quantize(_CENT),
                currency=self.shop.currency,
                cart_id=cart_id,
            ),
        )
        self.cart = Cart()
        self.ordered = True
        if self.visit.consented or rng.random() >= 0.15:
            return False
        self.at += 1_000
        self._record(
            TopicKind.customers,
            ConsentChanged(**self._env(), channel="email", granted=True, source="checkout"),
        )
        return True


def browse(
    shop: Shop, customer: Customer, visit: Visit, cart: Cart, stamp: Stamper
) -> SessionResult:
    """Decide a whole session from its first page view to its order, if any.

    ``cart`` is not changed; the result carries the cart as the session
    leaves it.
    """
    session = _Session(shop, customer, visit, cart, stamp)
    session.land()
    session.browse()
    opted_in = session.check_out()
    outcome: Outcome = (
        "ordered" if session.ordered else "abandoned_cart" if session.added else "browsed_only"
    )
    truth = SessionTruth(
        session_id=visit.session_id,
        customer_id=customer.customer_id,
        started_at=stamp.start + visit.start_ms * _MS,
        ended_at=stamp.start + session.at * _MS,
        outcome=outcome,
        intent=visit.intent,
        source=visit.source,
    )
    return SessionResult(session.events, truth, session.cart, opted_in)
