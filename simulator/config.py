"""The knobs of a simulated live stream, checked once so the generator can trust them."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import MAX_TS_MS, MIN_TS_MS


@dataclass(frozen=True)
class ScenarioConfig:
    """One reproducible scenario: the same config (seed included) gives the same stream, byte for byte.

    Rates are per *present* viewer, so a room's chat and likes follow its audience curve.
    """

    seed: int = 0
    rooms: int = 1
    #: Event-time length of the stream, in seconds.
    duration_s: int = 600
    #: Event time of the first second, in epoch milliseconds.
    start_ts: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    #: Audience at the peak (around the flash-sale start), per room.
    peak_viewers: int = 500
    #: Comments per present viewer per minute.
    comment_rate: float = 0.5
    #: Like taps per present viewer per minute (the sum of Like.count, not the number of events).
    like_rate: float = 6.0
    #: Flash-sale SKUs per room; the first one is the hot SKU.
    skus: int = 3
    #: Units opened per SKU.
    stock: int = 100
    #: Distinct buyers of the hot SKU per room (make it larger than ``stock`` to oversubscribe it).
    buyers: int = 500
    #: Share of all messages that are deliberately invalid (raw bytes for the dead-letter path).
    invalid_share: float = 0.0
    #: Share of events that arrive late, and the most they are late by (event-time ms).
    late_share: float = 0.05
    jitter_ms: int = 2000
    #: Share of order attempts that the client retries with the same order_id.
    retry_share: float = 0.05
    #: Share of distinct order_ids the simulated buyer pays for / cancels (the rest are abandoned).
    pay_share: float = 0.7
    cancel_share: float = 0.1
    #: Units added to the hot SKU a third of the way into the sale (0 = no restock).
    restock: int = 0
    #: Send a SaleConfig ``close`` for every SKU at the end of the sale window.
    close_sales: bool = True
    reservation_ttl_s: int = 120
    heartbeat_s: int = 30

    def __post_init__(self) -> None:
        problems = []
        if self.seed < 0:
            problems.append("seed must be >= 0")
        if not 1 <= self.rooms <= 1000:
            problems.append("rooms must be 1..1000")
        if not 10 <= self.duration_s <= 7 * 86_400:
            problems.append("duration must be 10 s .. 7 days")
        if not MIN_TS_MS <= self.start_ts <= MAX_TS_MS - self.duration_s * 1000:
            problems.append("start_ts must be epoch milliseconds between 2020 and 2100")
        if not 1 <= self.peak_viewers <= 10_000_000:
            problems.append("viewers must be 1..10,000,000")
        for name in ("comment_rate", "like_rate"):
            if not 0 <= getattr(self, name) <= 600:
                problems.append(f"{name} must be 0..600 per viewer per minute")
        if not 1 <= self.skus <= 100:
            problems.append("skus must be 1..100")
        if not 1 <= self.stock <= 10_000_000:
            problems.append("stock must be 1..10,000,000")
        if not 0 <= self.buyers <= 10_000_000:
            problems.append("buyers must be 0..10,000,000")
        for name in ("invalid_share", "late_share", "retry_share", "pay_share", "cancel_share"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be between 0 and 1")
        if self.invalid_share >= 0.9:
            problems.append("invalid_share must be below 0.9")
        if self.pay_share + self.cancel_share > 1:
            problems.append("pay_share + cancel_share must be at most 1")
        if not 0 <= self.jitter_ms <= 600_000:
            problems.append("jitter_ms must be 0..600000")
        if not 0 <= self.restock <= 10_000_000:
            problems.append("restock must be 0..10,000,000")
        if not 1 <= self.reservation_ttl_s <= 86_400:
            problems.append("reservation_ttl_s must be 1..86400")
        if not 1 <= self.heartbeat_s <= 3600:
            problems.append("heartbeat_s must be 1..3600")
        if problems:
            raise ValueError("invalid scenario: " + "; ".join(problems))

    @property
    def end_ts(self) -> int:
        """First millisecond after the stream (exclusive)."""
        return self.start_ts + self.duration_s * 1000
