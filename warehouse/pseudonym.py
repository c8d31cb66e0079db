"""Pseudonymous viewer ids: a keyed hash applied before events reach the analytics tables.

Why a keyed hash (HMAC-SHA256) and not a plain hash: viewer ids are guessable (sequential, phone
numbers, nicknames), so ``sha256(user_id)`` could be reversed by hashing candidates.  Without the
secret (``LC_PSEUDONYM_SECRET``) nobody can link a pseudonym back to a person, yet the same viewer
gets the same pseudonym in every stream, so unique viewers, repeat buyers and funnels stay exact.

A pseudonym is ``p_`` + the first 16 hex digits (64 bits) of the HMAC: short enough to keep the
tables small, long enough that two of a room's viewers practically never collide (birthday bound:
~10^-7 for 2 million distinct viewers), and still a valid ``Id`` (``[A-Za-z0-9_.:-]``).

Pure functions: the sink's row conversion and the tests' data path call the same code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from functools import lru_cache
from typing import TypeVar

import msgspec

PREFIX = "p_"
HEX_DIGITS = 16

E = TypeVar("E", bound=msgspec.Struct)


def pseudonymise(user_id: str, secret: str) -> str:
    """The pseudonym of ``user_id`` under ``secret`` (deterministic; different secrets differ)."""
    if not secret:
        raise ValueError("pseudonym secret must not be empty (set LC_PSEUDONYM_SECRET)")
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]


class Pseudonymiser:
    """Replaces ``user_id`` of events by its pseudonym, caching recent ids (viewers repeat a lot)."""

    def __init__(self, secret: str, cache_size: int = 1 << 16) -> None:
        if not secret:
            raise ValueError("pseudonym secret must not be empty (set LC_PSEUDONYM_SECRET)")
        self.secret = secret
        self.of = lru_cache(maxsize=cache_size)(self._compute)

    def _compute(self, user_id: str) -> str:
        return pseudonymise(user_id, self.secret)

    def event(self, event: E) -> E:
        """``event`` with its ``user_id`` pseudonymised; events without one (or with None) unchanged."""
        user_id = getattr(event, "user_id", None)
        if user_id is None:
            return event
        return msgspec.structs.replace(event, user_id=self.of(user_id))

    def events(self, events: Iterable[E]) -> list[E]:
        return [self.event(e) for e in events]
