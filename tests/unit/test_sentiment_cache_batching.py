"""LRU cache and micro-batcher: checked against simple reference models with hypothesis."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentiment.batching import MicroBatcher
from sentiment.cache import LruCache

ops = st.lists(st.tuples(st.sampled_from(["get", "put"]), st.integers(0, 12), st.integers()), max_size=200)


@given(st.integers(min_value=0, max_value=6), ops)
def test_lru_cache_matches_a_reference_model(capacity: int, operations: list[tuple[str, int, int]]) -> None:
    cache: LruCache[int, int] = LruCache(capacity)
    model: OrderedDict[int, int] = OrderedDict()
    hits = misses = 0
    for op, key, value in operations:
        if op == "put":
            cache.put(key, value)
            if capacity:
                model[key] = value
                model.move_to_end(key)
                while len(model) > capacity:
                    model.popitem(last=False)
        else:
            expected = model.get(key)
            if expected is None:
                misses += 1
            else:
                hits += 1
                model.move_to_end(key)
            assert cache.get(key) == expected
        assert len(cache) <= capacity
        assert cache.keys() == list(model)
    assert (cache.hits, cache.misses) == (hits, misses)


def test_lru_evicts_the_least_recently_used_key() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.hit_rate == 1.0


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        LruCache(-1)


# A stream of (gap since previous item in ms, item) plus polls in between.
steps = st.lists(st.tuples(st.sampled_from(["add", "poll"]), st.floats(min_value=0, max_value=40)), max_size=300)


@given(st.integers(min_value=1, max_value=10), st.floats(min_value=0, max_value=100), steps)
def test_batcher_releases_everything_once_in_order_within_size_and_time(
    max_size: int, max_wait: float, script: list[tuple[str, float]]
) -> None:
    batcher: MicroBatcher[int] = MicroBatcher(max_size, max_wait)
    now = 0.0
    added: list[int] = []
    released: list[int] = []
    arrived: dict[int, float] = {}
    for op, gap in script:
        now += gap
        if op == "add":
            item = len(added)
            added.append(item)
            arrived[item] = now
            batch = batcher.add(item, now)
        else:
            batch = batcher.poll(now)
        assert len(batch) <= max_size
        if batch and len(batch) < max_size:
            assert now - arrived[batch[0]] >= max_wait  # a partial batch only once its oldest is due
        released += batch
        if len(batcher):  # whatever is still pending is not overdue: it would have been released
            assert now - arrived[added[len(released)]] < max_wait
        else:
            assert batcher.due_in_ms(now) is None
    released += batcher.flush()
    assert released == added
    assert len(batcher) == 0 and batcher.due_in_ms(now) is None


def test_batcher_releases_a_full_batch_at_once() -> None:
    batcher: MicroBatcher[str] = MicroBatcher(3, 1000)
    assert batcher.add("a", 0) == [] and batcher.add("b", 1) == []
    assert batcher.add("c", 2) == ["a", "b", "c"]


def test_batcher_releases_a_partial_batch_when_the_oldest_item_is_due() -> None:
    batcher: MicroBatcher[str] = MicroBatcher(100, 50)
    batcher.add("a", 10)
    batcher.add("b", 40)
    assert batcher.poll(59) == []
    assert batcher.due_in_ms(59) == 1
    assert batcher.poll(60) == ["a", "b"]


def test_batcher_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(0, 10)
    with pytest.raises(ValueError):
        MicroBatcher(1, -1)
