"""The risk rules: per-user attempt rate limit, duplicate bursts, blocklist, rejection-spike alerts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.flash_sale.risk import RiskConfig, count_rejection, screen_attempt
from streams.flash_sale.state import SpikeState, UserState

T0 = 1_700_000_000_000


def user() -> UserState:
    return UserState(sku_id="s", user_id="u")


def test_rate_limit_allows_max_attempts_per_window_then_refuses() -> None:
    cfg = RiskConfig(max_attempts=3, window_ms=1000, duplicate_window_ms=0)
    u = user()
    verdicts = [screen_attempt(cfg, u, 1, T0 + i) for i in range(5)]
    assert verdicts == [None, None, None, "rate_limited", "rate_limited"]
    assert screen_attempt(cfg, u, 1, T0 + 5000) is None  # the window moved on


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=60), st.integers(1, 6), st.integers(1, 2000))
def test_rate_limit_never_lets_more_than_max_attempts_through_in_any_window(
    gaps: list[int], max_attempts: int, window_ms: int
) -> None:
    cfg = RiskConfig(max_attempts=max_attempts, window_ms=window_ms, duplicate_window_ms=0)
    u = user()
    times, passed = T0, []
    for gap in gaps:
        times += gap
        if screen_attempt(cfg, u, 1, times) is None:
            passed.append(times)
    for i, t in enumerate(passed):  # any max_attempts + 1 passed attempts span at least the window
        if i >= max_attempts:
            assert t - passed[i - max_attempts] >= window_ms


def test_duplicate_is_same_quantity_soon_after() -> None:
    cfg = RiskConfig(max_attempts=100, duplicate_window_ms=2000)
    u = user()
    assert screen_attempt(cfg, u, 1, T0) is None
    assert screen_attempt(cfg, u, 1, T0 + 100) == "duplicate"
    assert screen_attempt(cfg, u, 2, T0 + 200) is None  # another quantity: a different intent
    assert screen_attempt(cfg, u, 2, T0 + 2200) is None  # long enough after


def test_blocklist() -> None:
    cfg = RiskConfig(blocklist=frozenset({"u"}))
    assert screen_attempt(cfg, user(), 1, T0) == "blocked"


def test_spike_alerts_once_at_threshold_and_respects_cooldown() -> None:
    cfg = RiskConfig(spike_threshold=3, spike_bucket_ms=1000, alert_cooldown_ms=5000)
    spikes = SpikeState()
    alerts = [count_rejection(cfg, spikes, "rate_limited", T0 + i, room_id="r", sku_id="s") for i in range(6)]
    fired = [a for a in alerts if a is not None]
    assert len(fired) == 1 and alerts[2] is fired[0]
    assert (fired[0].kind, fired[0].level, fired[0].value, fired[0].room_id) == ("rejections_rate_limited",
                                                                                  "warning", 3.0, "r")
    again = [count_rejection(cfg, spikes, "rate_limited", T0 + 1000 + i, room_id="r", sku_id="s") for i in range(3)]
    assert again == [None, None, None]  # next bucket reached 3 again, but within the cooldown
    later = [count_rejection(cfg, spikes, "rate_limited", T0 + 6000 + i, room_id="r", sku_id="s") for i in range(3)]
    assert later[2] is not None
    assert spikes.totals["rate_limited"] == 12


def test_sold_out_spike_is_informational() -> None:
    cfg = RiskConfig(spike_threshold=1)
    alert = count_rejection(cfg, SpikeState(), "sold_out", T0, room_id="r", sku_id="s")
    assert alert is not None and alert.level == "info"
