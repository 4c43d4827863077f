"""The profile cache: bytes in the table, the recently used customers decoded in front."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.core.profile import Profile, Tombstone, state_from_bytes
from streams.metrics import Metrics
from streams.profile_cache import ProfileCache, stored_bytes

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def profile(customer: str, events: int = 1) -> Profile:
    return Profile(
        customer_id=customer,
        first_seen=AT,
        last_seen=AT,
        events_applied=events,
        segment="prospect",
        segment_as_of=AT,
    )


def test_the_table_holds_exactly_the_changelog_bytes() -> None:
    table: dict[str, bytes] = {}
    cache = ProfileCache(table, capacity=10)
    cache["a"] = profile("a")
    cache["b"] = Tombstone(customer_id="b", erased_at=AT)
    assert table == {"a": profile("a").to_bytes(), "b": cache["b"].to_bytes()}
    assert state_from_bytes(table["a"]) == cache["a"]


def test_a_write_is_read_back_without_decoding() -> None:
    cache = ProfileCache({}, capacity=10)
    written = profile("a")
    cache["a"] = written
    assert cache["a"] is written
    assert (cache.hits, cache.misses) == (1, 0)


def test_a_cold_customer_is_decoded_from_the_table_once() -> None:
    table = {"a": profile("a", 3).to_bytes()}
    cache = ProfileCache(table, capacity=10)
    first = cache["a"]
    assert first == profile("a", 3)
    assert cache["a"] is first
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_customer_is_dropped_first() -> None:
    cache = ProfileCache({}, capacity=2)
    for customer in ("a", "b"):
        cache[customer] = profile(customer)
    cache["a"]  # a is now the most recent
    cache["c"] = profile("c")
    assert cache.decoded == 2
    cache["b"]
    assert cache.misses == 1  # b had been dropped; a and c had not
    cache["a"]
    assert cache.misses == 2  # reading b dropped a


def test_missing_customers_raise_key_error_and_get_answers_none() -> None:
    cache = ProfileCache({}, capacity=2)
    with pytest.raises(KeyError):
        cache["nobody"]
    assert cache.get("nobody") is None
    assert "nobody" not in cache


def test_a_restored_value_replaces_the_decoded_one_once_invalidated() -> None:
    table: dict[str, bytes] = {}
    cache = ProfileCache(table, capacity=2)
    cache["a"] = profile("a", 1)
    table["a"] = profile("a", 7).to_bytes()  # what a restore from the changelog does
    cache.invalidate("a")
    assert cache["a"] == profile("a", 7)


def test_forgetting_decoded_copies_keeps_the_table() -> None:
    table: dict[str, bytes] = {}
    cache = ProfileCache(table, capacity=2)
    cache["a"] = profile("a")
    cache.forget_decoded()
    assert cache.decoded == 0
    assert len(cache) == 1
    assert list(cache) == ["a"]
    assert cache["a"] == profile("a")


def test_delete_removes_both() -> None:
    table: dict[str, bytes] = {}
    cache = ProfileCache(table, capacity=2)
    cache["a"] = profile("a")
    del cache["a"]
    assert table == {}
    assert cache.decoded == 0
    assert cache.get("a") is None


def test_capacity_zero_keeps_nothing_decoded() -> None:
    cache = ProfileCache({}, capacity=0)
    cache["a"] = profile("a")
    assert cache.decoded == 0
    assert cache["a"] == profile("a")
    assert cache.misses == 1


def test_a_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        ProfileCache({}, capacity=-1)


@given(
    capacity=st.integers(min_value=0, max_value=4),
    operations=st.lists(
        st.tuples(st.sampled_from(["set", "get", "del", "forget"]), st.sampled_from("abcdef")),
        max_size=60,
    ),
)
def test_reads_always_match_a_plain_dict(capacity: int, operations: list[tuple[str, str]]) -> None:
    table: dict[str, bytes] = {}
    cache = ProfileCache(table, capacity)
    reference: dict[str, Profile] = {}
    for step, (operation, customer) in enumerate(operations):
        if operation == "set":
            reference[customer] = cache[customer] = profile(customer, step)
        elif operation == "del" and customer in reference:
            del reference[customer], cache[customer]
        elif operation == "forget":
            cache.forget_decoded()
        assert cache.get(customer) == reference.get(customer)
        assert cache.decoded <= capacity
    assert dict(cache) == reference


def test_a_scrape_reports_hits_misses_and_size() -> None:
    cache = ProfileCache({"a": profile("a").to_bytes()}, capacity=5)
    cache["a"]
    cache["a"]
    cache.get("nobody")
    registry = CollectorRegistry()
    Metrics.create(registry).watch_profile_cache(cache)
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if sample.name.startswith("nudge_profile_cache")
    }
    assert samples == {
        "nudge_profile_cache_hits_total": 1.0,
        "nudge_profile_cache_misses_total": 1.0,
        "nudge_profile_cache_customers": 1.0,
    }


def test_stored_bytes_take_no_more_memory_than_their_length() -> None:
    # orjson's own output keeps the buffer it grew: several times the JSON's length.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [stored_bytes(profile(f"c{n}", n)) for n in range(200)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1.5 * sum(len(raw) for raw in kept)
