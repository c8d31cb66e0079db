"""Per-user limits, strikes, the socket cap and the fan-out plan (pure, microseconds).

Each test keeps the shape of an attack from the hardening issue: many sockets on one token, a flood of
invalid frames, a flood of subscribes, thirty slow clients dropped by one update.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ws_gateway.backpressure import BufferPolicy, ClientLag, plan_fan_out
from ws_gateway.limits import KeyedBuckets, LimitConfig, Limits, Strike

CONFIG = LimitConfig(action_rate=2.0, action_burst=10, control_rate=0.5, control_burst=5, strike_rate=0.2,
                     strike_burst=10, penalty_s=0.1, max_sockets=16)


@given(sockets=st.integers(1, 40), frames=st.lists(st.tuples(st.integers(0, 39), st.floats(0, 0.2)), max_size=400))
def test_more_sockets_on_one_token_buy_no_more_actions(sockets: int, frames: list[tuple[int, float]]) -> None:
    """40 connections on one token once gave one user 40 budgets: now they share one per (user, room)."""
    limits, now, allowed = Limits(CONFIG), 0.0, 0
    for socket, gap in frames:
        now += gap
        _ = socket % sockets  # whichever socket sends it, the key is the user and room
        allowed += limits.action("mallory", "r1", now)
    assert allowed <= CONFIG.action_burst + CONFIG.action_rate * now + 1e-9


def test_users_and_rooms_have_budgets_of_their_own() -> None:
    limits = Limits(CONFIG)
    assert sum(limits.action("mallory", "r1", 0.0) for _ in range(50)) == CONFIG.action_burst
    assert limits.action("alice", "r1", 0.0)  # another user is not affected
    assert limits.action("mallory", "r2", 0.0)  # nor the same user in another room


def test_a_user_holds_at_most_max_sockets_and_a_closed_one_frees_its_place() -> None:
    limits = Limits(CONFIG)
    opened = [limits.open_socket("mallory") for _ in range(40)]
    assert sum(opened) == CONFIG.max_sockets and opened[: CONFIG.max_sockets] == [True] * CONFIG.max_sockets
    assert limits.open_socket("alice")
    limits.close_socket("mallory")
    assert limits.open_socket("mallory") and not limits.open_socket("mallory")
    for _ in range(CONFIG.max_sockets):
        limits.close_socket("mallory")
    assert limits.sockets("mallory") == 0


def test_invalid_frames_throttle_then_close_and_the_dead_letters_are_bounded() -> None:
    """2,000 invalid frames in 0.4 s once became 2,000 dead letters: now at most the strike burst."""
    limits = Limits(CONFIG)
    verdicts = [limits.strike("mallory", i * 0.0002) for i in range(2000)]
    assert verdicts[: CONFIG.strike_burst] == [Strike.THROTTLE] * CONFIG.strike_burst
    assert set(verdicts[CONFIG.strike_burst:]) == {Strike.CLOSE}
    assert limits.strike("alice", 0.4) is Strike.THROTTLE  # one user's garbage costs nobody else
    assert limits.strike("mallory", 0.4 + 1 / CONFIG.strike_rate) is Strike.THROTTLE  # forgiven, slowly


def test_three_hundred_subscribes_get_at_most_the_control_burst() -> None:
    limits = Limits(CONFIG)
    assert sum(limits.control_frame("mallory", i * 0.001) for i in range(300)) == CONFIG.control_burst


@given(events=st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0, 3)), max_size=200))
def test_forgetting_full_buckets_never_changes_a_decision(events: list[tuple[str, float]]) -> None:
    swept: KeyedBuckets[str] = KeyedBuckets(rate=1.0, burst=3)
    kept: KeyedBuckets[str] = KeyedBuckets(rate=1.0, burst=3)
    now = 0.0
    for key, gap in events:
        now += gap
        swept.sweep(now)
        assert swept.allow(key, now) == kept.allow(key, now)
    assert len(swept) <= len(kept)


def test_thirty_slow_clients_are_dropped_by_one_update_and_the_healthy_host_still_gets_it() -> None:
    """The attack: 30 clients that never read, dropped together.  Planning first, acting afterwards means
    the members set is never changed while it is iterated, and the healthy client is in ``send``."""
    policy = BufferPolicy(high_water=1000, limit=10_000, max_behind_s=5.0)
    members = {f"slow{i}" for i in range(30)} | {"healthy"}
    lags = {conn: ClientLag() for conn in members}
    buffered = {conn: 50_000 for conn in members} | {"healthy": 0}
    plan = plan_fan_out(members, lags, buffered.__getitem__, policy, now=1.0)
    assert plan.send == ["healthy"]
    assert sorted(plan.drop) == sorted(f"slow{i}" for i in range(30))
    assert len(members) == 31  # the plan did not touch the membership


@given(buffers=st.lists(st.integers(0, 20_000), min_size=1, max_size=60), behind=st.lists(st.booleans(), max_size=60))
def test_every_member_with_lag_bookkeeping_gets_exactly_one_verdict(buffers: list[int], behind: list[bool]) -> None:
    policy = BufferPolicy(high_water=1000, limit=10_000, max_behind_s=5.0)
    members = list(range(len(buffers)))
    lags = {i: ClientLag(behind_since=0.0 if i < len(behind) and behind[i] else None) for i in members if i % 7}
    plan = plan_fan_out(members, lags, buffers.__getitem__, policy, now=1.0)
    decided = plan.send + plan.snapshot + plan.drop
    assert len(decided) + plan.skipped == len(lags)
    assert set(decided) <= set(lags)
    assert all(buffers[i] > policy.limit for i in plan.drop)


def test_pings_have_a_budget_of_their_own_per_user() -> None:
    limits = Limits(CONFIG)
    assert sum(limits.ping("mallory", 0.0) for _ in range(1000)) == CONFIG.ping_burst
    assert limits.ping("alice", 0.0) and limits.action("mallory", "r1", 0.0)  # nobody else's, nothing else
