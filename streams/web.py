"""The worker's HTTP pages: Prometheus metrics and the profile read API.

Faust's own pages (table dumps, router, graph, stats) are switched off in
``streams.app`` because they would expose customer data; these are the only
pages a worker serves. The profile API answers from the worker that owns the
customer's partition (Faust's table routing forwards the request there) and
refuses to answer while tables are still being restored, rather than serve
a half-recovered profile.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import SecretStr

from streams.core.profile import Profile, Tombstone

log = logging.getLogger(__name__)

ProfileRenderer = Callable[[Any, datetime], Mapping[str, Any]]
"""Turns a stored profile and an observation time into the API's JSON document."""


def add_metrics_page(app: faust.App, registry: CollectorRegistry) -> None:
    """Serve ``registry`` at ``/metrics`` in Prometheus' text format."""

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp rejects a charset inside content_type=, so set the header.
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def authorized(headers: Mapping[str, str], token: SecretStr | None) -> bool:
    """Tell whether a request may read profiles: any request when no token is set."""
    if token is None:
        return True
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


def parse_as_of(raw: str | None, default: datetime) -> datetime | None:
    """Read the optional ``as_of`` query parameter; None when it is not an aware time."""
    if raw is None:
        return default
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


async def _know_partitions(app: faust.App, table: Any) -> None:
    """Make sure the producer has metadata for the table's changelog topic.

    Faust's routing hashes the key with the producer's partitioner, which
    fails with a TypeError while the producer has never written to (or
    looked up) that topic, as on a worker freshly restarted from its
    changelog. aiokafka answers at once once the topic is known.
    """
    # Faust exposes no public lookup; its aiokafka driver's own accessor.
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    await producer.partitions_for(table.changelog_topic.get_topic_name())


def add_profile_api(
    app: faust.App,
    table: Any,
    *,
    lookup: Callable[[str], Profile | Tombstone | None],
    render: ProfileRenderer,
    token: SecretStr | None,
    clock: Callable[[], datetime],
) -> None:
    """Serve ``GET /customers/{customer_id}``, routed to the owner of its ``table`` partition.

    ``lookup`` reads the owner's newest profile, including state staged
    since the last commit.
    """
    blueprint = faust.web.Blueprint("profiles")

    async def answer(view: Any, request: Any, customer_id: str) -> Any:
        if app.in_recovery or app.rebalancing:
            return view.error(503, "profiles are being restored; retry shortly")
        as_of = parse_as_of(request.query.get("as_of"), clock())
        if as_of is None:
            return view.error(400, "as_of must be an ISO 8601 time with a UTC offset")
        profile = lookup(customer_id)
        if profile is None:
            return view.error(404, f"no profile for customer {customer_id!r}")
        body = orjson.dumps(render(profile, as_of))
        return view.bytes(body, headers={"Content-Type": "application/json"})

    # Forwards the request to the worker owning the customer's partition.
    on_owner: Any = app.table_route(table=table, match_info="customer_id")(answer)

    @blueprint.route("/{customer_id}", name="detail")
    class CustomerView(faust.web.View):
        async def get(self, request: Any, customer_id: str) -> Any:
            # Checked here, before routing, so no unauthorized request is forwarded.
            if not authorized(request.headers, token):
                return self.error(401, "a valid bearer token is required")
            try:
                await _know_partitions(app, table)
                return await on_owner(self, request, customer_id)
            except faust.web.exceptions.ServiceUnavailable:
                # No owner known for the partition: the group is still rebalancing.
                return self.error(503, "profiles are being reassigned; retry shortly")
            except Exception:
                log.exception("profile request for %r failed", customer_id)
                return self.error(500, "internal error; see the worker log")

    blueprint.register(app, url_prefix="/customers")
