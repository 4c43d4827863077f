"""Clickstream events: what a shopper looks at, published by the site's tracker.

Browsing is the raw material of intent: product and category views feed the
session and the features, and a product view with no add-to-cart after it is
what the browse-abandonment rule waits for.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, TypeAdapter

from schemas.common import Currency, Id, Label, Money, Text, UriReference, Url
from schemas.envelope import Envelope

__all__ = [
    "CLICKSTREAM_ADAPTER",
    "MAX_SEARCH_RESULTS",
    "CategoryView",
    "ClickstreamEvent",
    "PageView",
    "ProductView",
    "Search",
]

MAX_SEARCH_RESULTS: Final = 1_000_000_000
"""Upper bound of ``Search.results_count``; larger is a tracker bug."""


class PageView(Envelope):
    """A page was shown; the generic event when nothing more specific applies."""

    type: Literal["page_view"] = "page_view"
    url: Url
    referrer: UriReference | None = None
    title: Text | None = None


class ProductView(Envelope):
    """A product page was shown, at the price the shopper saw."""

    type: Literal["product_view"] = "product_view"
    product_id: Id
    price: Money
    currency: Currency
    category: Label | None = None


class CategoryView(Envelope):
    """A category (listing) page was shown."""

    type: Literal["category_view"] = "category_view"
    category: Label


class Search(Envelope):
    """The shopper searched the shop."""

    type: Literal["search"] = "search"
    query: Label
    results_count: Annotated[int, Field(ge=0, le=MAX_SEARCH_RESULTS)] | None = None


ClickstreamEvent = Annotated[
    PageView | ProductView | CategoryView | Search,
    Field(discriminator="type"),
]
"""Any event of the clickstream topic, told apart by ``type``."""

CLICKSTREAM_ADAPTER: Final[TypeAdapter[ClickstreamEvent]] = TypeAdapter(ClickstreamEvent)
"""Validates and describes (JSON Schema) the clickstream topic's messages."""
