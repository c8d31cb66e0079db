"""Shared field types and text rules of every event.

Why msgspec: one Struct per event gives typed Python objects, strict JSON decoding with range
checks (at ~1 µs an event, which matters at tens of thousands of events a second) and an exported
JSON Schema, all from a single definition.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import msgspec

SCHEMA_VERSION = 1

#: Earliest and latest event timestamps accepted, in milliseconds since the Unix epoch.
MIN_TS_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

#: Longest comment or alert message after normalisation, in characters.
MAX_TEXT_CHARS = 500

Version = Annotated[int, msgspec.Meta(ge=1, le=SCHEMA_VERSION, description="Schema version of this event.")]
Id = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        # (?!\n) because Python's $ also matches before a trailing newline.
        pattern=r"^[A-Za-z0-9_.:\-]+(?!\n)$",
        description="Identifier: 1-64 characters of A-Z a-z 0-9 _ . : -",
    ),
]
#: The :data:`Id` rule as a regex, for ids that arrive outside an event (a URL, a file name).
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def is_file_id(text: str) -> bool:
    """Whether ``text`` is an :data:`Id` that is safe as ONE path component: no ``/`` (the Id rule)
    and no leading dot, which rules out ``.`` and ``..`` (valid Ids) and hidden files."""
    return ID_PATTERN.fullmatch(text) is not None and not text.startswith(".")


TimestampMs = Annotated[
    int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS, description="Event time, milliseconds since the Unix epoch (UTC).")
]
# ---- ranges: what inputs may carry, and why every output they add up to still fits -----------------
#
# An input bound alone is not enough: the counters ADD inputs up (GMV is the sum of price x quantity
# over a room's orders), so an output field must hold the largest valid inputs summed over a
# plausible stream.  The rule, checked by tests/unit/test_ranges.py:
#
#     ENVELOPE_ORDER_ATTEMPTS * MAX_QUANTITY * MAX_PRICE_CENTS <= MAX_SAFE_INT   (money)
#     ENVELOPE_EVENTS * MAX_LIKE_COUNT                         <= MAX_SAFE_INT   (likes)
#     ENVELOPE_SALE_CONFIGS * MAX_STOCK_UNITS                  <= MAX_SAFE_INT   (stock)
#
# Beyond the envelope the live counters SATURATE at MAX_SAFE_INT (RoomCounters clamps on
# construction), deliberately: a snapshot that does not validate freezes the dashboard, a pinned
# figure only stops growing.

#: Largest integer in any event: 2**53 - 1, the largest integer a JSON number carries exactly in
#: JavaScript (the dashboard reads these numbers) and far inside ClickHouse's UInt64.
MAX_SAFE_INT = 2**53 - 1
#: Most units one order may buy.
MAX_QUANTITY = 100
#: Highest unit price of a SKU: 90,000,000 fen = 900,000 yuan (a car sold live still fits).
MAX_PRICE_CENTS = 90_000_000
#: Most likes one (possibly coalesced) like event may carry.
MAX_LIKE_COUNT = 100_000
#: Most units one sale config (open or restock) may add.
MAX_STOCK_UNITS = 10_000_000
#: The plausible stream, over a room's whole life: order attempts, events of any kind, sale configs.
ENVELOPE_ORDER_ATTEMPTS = 1_000_000
ENVELOPE_EVENTS = 10_000_000_000
ENVELOPE_SALE_CONFIGS = 1_000_000

Price = Annotated[
    int, msgspec.Meta(ge=0, le=MAX_PRICE_CENTS, description="Unit price in integer cents (fen), at most 900,000 yuan.")
]
Cents = Annotated[
    int, msgspec.Meta(ge=0, le=MAX_SAFE_INT, description="Money in integer cents (fen), at most 2**53 - 1.")
]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT, description="A count, at most 2**53 - 1.")]


def saturate(value: int) -> int:
    """``value`` pinned to MAX_SAFE_INT: how the live counters behave beyond the envelope."""
    return MAX_SAFE_INT if value > MAX_SAFE_INT else value
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4 * MAX_TEXT_CHARS)]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC (full-width forms to ASCII, compatibility characters folded), controls and bidi overrides
    removed, runs of whitespace collapsed to one space, ends trimmed.

    Applied to a fixpoint so that normalising twice changes nothing: a decoded event re-encodes to
    the same bytes.
    """
    for _ in range(4):
        out = unicodedata.normalize("NFKC", text)
        out = _CONTROL.sub("", out)
        out = _SPACES.sub(" ", out).strip()
        if out == text:
            return out
        text = out
    return text


def check_text(text: str, field_name: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Normalise ``text`` and enforce its length; raises ValueError with the field's name."""
    out = normalize_text(text)
    if not out:
        raise ValueError(f"{field_name} is empty after normalisation")
    if len(out) > max_chars:
        raise ValueError(f"{field_name} is {len(out)} characters, at most {max_chars} allowed")
    return out


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every wire type: a strict, keyword-only record."""
