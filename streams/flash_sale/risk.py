"""Risk rules of flash-sale order attempts: blocklist, per-user rate limit, duplicate bursts, spikes.

They run inside the inventory decision (same partition owner, same event-time clock), so a rule's
verdict is part of the replayable, exactly-once result of an attempt, and its state (attempt
windows, rejection buckets) goes to the changelog with the stock.  All functions are pure over the
state records they are handed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import Alert
from streams.flash_sale.state import SpikeState, UserState

#: Reasons that point at abuse (alert level ``warning``); the others are ordinary sale outcomes (``info``).
ABUSE_REASONS = frozenset({"rate_limited", "duplicate", "blocked", "invalid"})


@dataclass(frozen=True)
class RiskConfig:
    """Thresholds of the risk rules.

    Why per user *and* SKU: attempts of one SKU are decided by one partition owner, so the window
    can be counted exactly there without a shared store; a buyer racing for one hot SKU is what the
    rules must slow down.
    """

    max_attempts: int = 5
    """At most this many attempts (new order_ids) per user per SKU within ``window_ms``."""
    window_ms: int = 1_000
    duplicate_window_ms: int = 2_000
    """A new order_id with the same quantity this soon after the user's previous attempt is a duplicate."""
    blocklist: frozenset[str] = field(default_factory=frozenset)
    spike_threshold: int = 100
    """Rejections of one reason in one bucket that make an alert."""
    spike_bucket_ms: int = 1_000
    alert_cooldown_ms: int = 10_000
    """At most one alert per SKU and reason within this time."""


def screen_attempt(cfg: RiskConfig, user: UserState, quantity: int, now: int) -> str | None:
    """Record one attempt of ``user`` at ``now`` and return the risk reason that rejects it, or None.

    Every attempt counts, also the rejected ones, so a buyer who keeps hammering stays limited.
    """
    if user.user_id in cfg.blocklist:
        return "blocked"
    window = user.attempts  # the last max_attempts + 1 attempt times, this one included
    window.append(now)
    if len(window) > cfg.max_attempts + 1:
        del window[: len(window) - cfg.max_attempts - 1]
    previous_ts, previous_qty = user.last_attempt_ts, user.last_quantity
    user.last_attempt_ts, user.last_quantity = now, quantity
    if len(window) > cfg.max_attempts and now - window[0] < cfg.window_ms:
        return "rate_limited"
    if previous_ts is not None and previous_qty == quantity and now - previous_ts < cfg.duplicate_window_ms:
        return "duplicate"
    return None


def count_rejection(
    cfg: RiskConfig, spikes: SpikeState, reason: str, now: int, *, room_id: str, sku_id: str
) -> Alert | None:
    """Count one rejection; return an Alert when this reason's count in the current bucket reaches
    the threshold and the reason has not alerted within the cooldown."""
    bucket = now - now % cfg.spike_bucket_ms
    if bucket != spikes.bucket_start:
        spikes.bucket_start = bucket
        spikes.counts.clear()
    count = spikes.counts.get(reason, 0) + 1
    spikes.counts[reason] = count
    spikes.totals[reason] = spikes.totals.get(reason, 0) + 1
    if count != cfg.spike_threshold:
        return None
    last = spikes.last_alert.get(reason)
    if last is not None and now - last < cfg.alert_cooldown_ms:
        return None
    spikes.last_alert[reason] = now
    return Alert(
        alert_id=f"{sku_id}:{reason}:{bucket}",
        room_id=room_id,
        kind=f"rejections_{reason}",
        level="warning" if reason in ABUSE_REASONS else "info",
        message=(
            f"{count} order attempts on {sku_id} rejected as {reason} within {cfg.spike_bucket_ms} ms "
            f"({spikes.totals[reason]} so far)"
        ),
        value=float(count),
        threshold=float(cfg.spike_threshold),
        ts=now,
    )
