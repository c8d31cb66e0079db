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
TimestampMs = Annotated[
    int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS, description="Event time, milliseconds since the Unix epoch (UTC).")
]
Cents = Annotated[int, msgspec.Meta(ge=0, le=10**12, description="Money in integer cents (fen).")]
Count = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
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
