"""When things happen in a live stream: the audience curve, the sale window, the buyers' rush.

Pure functions of event time and a seeded ``random.Random``; the generator calls them per second.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: Fractions of the stream: warm-up ramp ends, sale announced, sale starts, sale ends.
RAMP_END = 0.15
ANNOUNCE = 0.30
SALE_START = 0.40
SALE_END = 0.75


@dataclass(frozen=True)
class SaleWindow:
    """Event times (epoch ms) of one room's flash sale."""

    announce_ms: int
    starts_at: int
    ends_at: int
    restock_at: int


def sale_window(start_ts: int, duration_s: int, shift: float) -> SaleWindow:
    """The room's sale window; ``shift`` in [-0.05, 0.05] of the duration staggers rooms."""
    span = duration_s * 1000

    def at(fraction: float) -> int:
        return start_ts + int(span * (fraction + shift))

    starts_at = at(SALE_START)
    ends_at = at(SALE_END)
    return SaleWindow(
        announce_ms=at(ANNOUNCE),
        starts_at=starts_at,
        ends_at=ends_at,
        restock_at=starts_at + (ends_at - starts_at) // 3,
    )


def audience_shape(u: float, sale_u: float) -> float:
    """Target audience as a share of the peak at stream fraction ``u`` in [0, 1].

    A warm-up ramp, a climb as the host teases the sale, a plateau at the peak right after the
    sale opens, and a slow decline once the hot SKU is gone.
    """
    u = min(max(u, 0.0), 1.0)
    if u < RAMP_END:
        return 0.05 + 0.55 * u / RAMP_END
    if u < sale_u:
        return 0.6 + 0.4 * (u - RAMP_END) / max(sale_u - RAMP_END, 1e-9)
    plateau_end = sale_u + 0.1
    if u < plateau_end:
        return 1.0
    return 1.0 - 0.55 * (u - plateau_end) / max(1.0 - plateau_end, 1e-9)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw; Knuth's method for small means, a rounded normal for large ones (fast enough
    for per-second counts of tens of thousands)."""
    if lam <= 0:
        return 0
    if lam < 30:
        limit = math.exp(-lam)
        k, p = 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def attempt_time(rng: random.Random, window: SaleWindow) -> int:
    """When one buyer taps "buy": most in the first seconds after the start, a few too early (they
    hammer the button before it opens), some later in the window, a few after it has ended."""
    roll = rng.random()
    length = window.ends_at - window.starts_at
    if roll < 0.08:
        return window.starts_at - 1 - int(rng.random() * 5000)
    if roll < 0.80:
        return window.starts_at + min(int(rng.expovariate(1 / 1500)), length - 1)
    if roll < 0.97:
        return window.starts_at + int(rng.random() * length)
    return window.ends_at + int(rng.random() * 10_000)


def like_burst_size(rng: random.Random) -> int:
    """Taps in one Like event: mostly single taps, sometimes a rapid-fire burst from one thumb."""
    roll = rng.random()
    if roll < 0.55:
        return 1
    if roll < 0.85:
        return rng.randint(2, 10)
    return rng.randint(11, 60)
