"""Viewer-id pseudonyms: keyed, stable, valid ids, applied to events without touching anything else."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Comment, Like, SaleConfig, decode, encode
from warehouse.pseudonym import PREFIX, Pseudonymiser, pseudonymise

ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.:", min_size=1, max_size=64)


def test_known_answer_of_hmac_sha256() -> None:
    # RFC-style test vector (HMAC-SHA256, key "key"), truncated to 16 hex digits.
    assert pseudonymise("The quick brown fox jumps over the lazy dog", "key") == "p_f7bc83f430538424"


@given(ids, st.text(min_size=1, max_size=40))
def test_pseudonym_is_deterministic_and_a_valid_id(user_id: str, secret: str) -> None:
    p = pseudonymise(user_id, secret)
    assert p == pseudonymise(user_id, secret)
    assert p.startswith(PREFIX) and ID.match(p)
    assert user_id not in p[len(PREFIX):] or len(user_id) <= 3  # no raw id inside (short ids may occur by chance)


@given(ids, ids)
def test_different_ids_get_different_pseudonyms(a: str, b: str) -> None:
    if a != b:
        assert pseudonymise(a, "s") != pseudonymise(b, "s")


@given(ids)
def test_the_secret_matters(user_id: str) -> None:
    assert pseudonymise(user_id, "one secret") != pseudonymise(user_id, "another secret")


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="LC_PSEUDONYM_SECRET"):
        pseudonymise("u1", "")
    with pytest.raises(ValueError):
        Pseudonymiser("")


def test_events_get_their_user_id_replaced_and_nothing_else() -> None:
    ps = Pseudonymiser("k")
    comment = Comment(event_id="c1", room_id="r1", user_id="alice", text="hi <b>", ts=1_767_225_600_000)
    out = ps.event(comment)
    assert out.user_id == pseudonymise("alice", "k")
    assert msgspec.structs.replace(out, user_id="alice") == comment
    assert decode(Comment, encode(out)) == out  # still a valid event on the wire
    coalesced = Like(event_id="l1", room_id="r1", user_id=None, count=5, ts=1_767_225_600_000)
    assert ps.event(coalesced) is coalesced
    config = SaleConfig(event_id="s1", room_id="r1", sku_id="k1", action="close", ts=1_767_225_600_000)
    assert ps.event(config) is config
    assert ps.events([comment, coalesced]) == [out, coalesced]
