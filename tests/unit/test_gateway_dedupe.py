"""Client idempotency keys of comments and likes: one produce per key and window (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ws_gateway.dedupe import Idempotency, Seen

Key = tuple[str, str, str, str]


def key(user: str, client_id: str = "k1") -> Key:
    return (user, "r1", "comment", client_id)


def test_a_comment_retried_three_times_produces_once_and_every_retry_gets_the_answer() -> None:
    cache: Idempotency[Key, str, dict[str, str]] = Idempotency(window_s=300)
    assert cache.claim(key("alice"), "socket1", 0.0).seen is Seen.NEW  # produce it
    assert cache.claim(key("alice"), "socket2", 0.5).seen is Seen.PENDING  # a reconnect's retry joins
    assert cache.settle(key("alice"), {"event_id": "e"}) == ["socket1", "socket2"]
    done = cache.claim(key("alice"), "socket3", 10.0)
    assert (done.seen, done.answer) == (Seen.DONE, {"event_id": "e"})


def test_another_users_key_never_matches() -> None:
    cache: Idempotency[Key, str, int] = Idempotency(window_s=300)
    assert cache.claim(key("alice"), "a", 0.0).seen is Seen.NEW
    assert cache.claim(key("bob"), "b", 0.0).seen is Seen.NEW


def test_a_failed_delivery_forgets_the_key_so_the_retry_is_produced() -> None:
    cache: Idempotency[Key, str, int] = Idempotency(window_s=300)
    cache.claim(key("alice"), "a", 0.0)
    cache.claim(key("alice"), "a-retry", 0.1)
    assert cache.abandon(key("alice")) == ["a", "a-retry"]  # both are told it failed
    assert cache.claim(key("alice"), "a-again", 0.2).seen is Seen.NEW


def test_the_window_and_the_capacity_bound_memory() -> None:
    cache: Idempotency[Key, str, int] = Idempotency(window_s=300, capacity=3)
    for i in range(5):
        cache.claim(key("alice", f"k{i}"), "a", float(i))
    assert len(cache) == 3
    assert cache.claim(key("alice", "k0"), "a", 5.0).seen is Seen.NEW  # evicted early by capacity
    cache.settle(key("alice", "k4"), 1)
    assert cache.claim(key("alice", "k4"), "a", 303.9).seen is Seen.DONE
    assert cache.claim(key("alice", "k4"), "a", 304.0).seen is Seen.NEW  # 300 s after first seen: forgotten


ops = st.lists(st.tuples(st.sampled_from(["claim", "settle", "abandon"]), st.sampled_from(["k1", "k2", "k3"]),
                         st.floats(0, 50)), max_size=100)


@given(ops)
def test_within_a_window_a_key_is_produced_again_only_after_a_failure(steps: list[tuple[str, str, float]]) -> None:
    """Model check: NEW (a produce) happens for a key only the first time, or after abandon/expiry."""
    cache: Idempotency[Key, int, int] = Idempotency(window_s=100)
    now, produced = 0.0, 0
    live: set[str] = set()
    first: dict[str, float] = {}
    for op, client_id, gap in steps:
        now += gap
        k = key("alice", client_id)
        for stale in [c for c in live if now - first[c] >= 100]:
            live.discard(stale)
        if op == "claim":
            seen = cache.claim(k, 0, now).seen
            assert (seen is Seen.NEW) == (client_id not in live)
            if seen is Seen.NEW:
                produced += 1
                live.add(client_id)
                first[client_id] = now
        elif op == "settle":
            cache.settle(k, 1)
        else:
            cache.abandon(k)
            live.discard(client_id)
    assert produced >= len(live)
