"""How viewers move through a live-selling room's funnel: where they come from, what they see, what
they tap, who follows and shares.  Constants and small pure draws; :mod:`simulator.room` uses them.

Why these numbers: they give the shape Douyin's Compass screen shows for an ordinary room, not a
precise market model.  Impressions outnumber clicks by ~20-40x (CTR of a few percent; the pinned
card converts better than the shelf), clicks outnumber order attempts, and attempts outnumber
payments.  Viewers from the following feed, search and shared links came for the host or the
product, so they tap, buy and follow more often than viewers the recommendation feed or an ad
dropped in; the console's "entries by source" and the report's conversion by source show it.
"""

from __future__ import annotations

import random
from typing import Final

from schemas.events import TrafficSource

#: Share of joins by traffic source (sums to 1).
SOURCE_MIX: Final[dict[TrafficSource, float]] = {
    "recommend_feed": 0.45,
    "following_feed": 0.14,
    "short_video": 0.14,
    "search": 0.08,
    "ads": 0.09,
    "shared_link": 0.05,
    "other": 0.05,
}
#: How interested a viewer from each source is: multiplies their CTR, follow rate and buying weight.
INTEREST: Final[dict[TrafficSource, float]] = {
    "recommend_feed": 0.7,
    "following_feed": 1.6,
    "short_video": 1.1,
    "search": 1.9,
    "ads": 0.8,
    "shared_link": 1.4,
    "other": 1.0,
}
#: Chance that a viewer arriving from each source already follows the room.
FOLLOWER_SHARE: Final[dict[TrafficSource, float]] = {
    "recommend_feed": 0.06,
    "following_feed": 1.0,
    "short_video": 0.15,
    "search": 0.2,
    "ads": 0.04,
    "shared_link": 0.25,
    "other": 0.1,
}
#: Base chance that one showing of a product is tapped, by where it was shown.
CTR_PINNED: Final = 0.08
CTR_SHELF: Final = 0.025
#: Shelf (shopping bag) opens per present viewer per minute; each shows every SKU of the room.
SHELF_RATE: Final = 0.35
#: Follows per present non-follower per minute, and shares per present viewer per minute (x interest).
FOLLOW_RATE: Final = 0.02
SHARE_RATE: Final = 0.006
#: A follower is this much more likely to buy than a non-follower with the same interest.
FOLLOWER_BUY_BOOST: Final = 1.5
#: Share channels and their mix.
SHARE_CHANNELS: Final = ("wechat", "moments", "weibo", "qq", "copy_link", "other")
SHARE_WEIGHTS: Final = (0.45, 0.2, 0.1, 0.1, 0.1, 0.05)

_SOURCES = tuple(SOURCE_MIX)
_SOURCE_CUM: Final = tuple(sum(list(SOURCE_MIX.values())[: i + 1]) for i in range(len(SOURCE_MIX)))
#: The largest buying weight any viewer can have (for rejection sampling).
MAX_BUY_WEIGHT: Final = max(INTEREST.values()) * FOLLOWER_BUY_BOOST


def pick_source(rng: random.Random) -> TrafficSource:
    """A traffic source drawn from :data:`SOURCE_MIX`."""
    roll = rng.random() * _SOURCE_CUM[-1]
    for source, edge in zip(_SOURCES, _SOURCE_CUM, strict=True):
        if roll < edge:
            return source
    return _SOURCES[-1]


def buy_weight(source: TrafficSource, follower: bool) -> float:
    """Relative chance that this viewer is the one who buys, against any other present viewer."""
    return INTEREST[source] * (FOLLOWER_BUY_BOOST if follower else 1.0)


def click_chance(placement: str, source: TrafficSource) -> float:
    """Chance that one showing of a product to a viewer from ``source`` is tapped."""
    base = CTR_PINNED if placement == "pinned" else CTR_SHELF
    return min(1.0, base * INTEREST[source])
