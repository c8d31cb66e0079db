"""Tokens and subscription rules of the gateway (pure, microseconds)."""

from __future__ import annotations

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import ID_ALPHABET
from ws_gateway.auth import (
    AuthError,
    Claims,
    CloseCode,
    authorize_subscription,
    mint_token,
    verify_token,
)

SECRET = "unit-test-secret-of-at-least-32-bytes!"
NOW = 1_800_000_000
ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=20)


@given(sub=ids, room=ids, role=st.sampled_from(["host", "viewer", "ops"]), ttl=st.integers(1, 10**6))
def test_a_minted_token_verifies_to_its_own_claims(sub: str, room: str, role: str, ttl: int) -> None:
    claims = verify_token(SECRET, mint_token(SECRET, sub=sub, role=role, room=room, now_s=NOW, ttl_s=ttl),  # type: ignore[arg-type]
                          now_s=NOW)
    assert claims == Claims(sub=sub, role=role, room=room, exp=NOW + ttl)  # type: ignore[arg-type]


@given(age=st.integers(0, 10**6))
def test_a_token_is_expired_from_its_exp_second_on(age: int) -> None:
    tok = mint_token(SECRET, sub="u", role="viewer", room="r", now_s=NOW, ttl_s=60)
    with pytest.raises(AuthError) as refused:
        verify_token(SECRET, tok, now_s=NOW + 60 + age)
    assert refused.value.code == CloseCode.TOKEN_EXPIRED


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, CloseCode.TOKEN_MISSING),
        ("", CloseCode.TOKEN_MISSING),
        ("garbage", CloseCode.TOKEN_INVALID),
        (mint_token("another-secret-that-is-long-enough!!", sub="u", role="host", room="r", now_s=NOW),
         CloseCode.TOKEN_INVALID),
        (jwt.encode({"sub": "u", "role": "king", "room": "r", "exp": NOW + 60}, SECRET), CloseCode.TOKEN_INVALID),
        (jwt.encode({"sub": "u", "role": "host", "exp": NOW + 60}, SECRET), CloseCode.TOKEN_INVALID),  # no room
        (jwt.encode({"role": "host", "room": "r", "exp": NOW + 60}, SECRET), CloseCode.TOKEN_INVALID),  # no sub
        (jwt.encode({"sub": "u", "role": "host", "room": "r"}, SECRET), CloseCode.TOKEN_INVALID),  # no exp
        (jwt.encode({"sub": "u", "role": "host", "room": "r", "exp": NOW + 60}, SECRET, algorithm="HS512"),
         CloseCode.TOKEN_INVALID),  # algorithm not allowed
    ],
)
def test_refusals_carry_distinct_close_codes(token: str | None, code: CloseCode) -> None:
    with pytest.raises(AuthError) as refused:
        verify_token(SECRET, token, now_s=NOW)
    assert refused.value.code == code


def test_close_codes_are_distinct_and_in_the_private_range() -> None:
    codes = [c.value for c in CloseCode]
    assert len(set(codes)) == len(codes) and all(4000 <= c <= 4999 for c in codes)


HOST = Claims(sub="h", role="host", room="r1", exp=NOW)
VIEWER = Claims(sub="v", role="viewer", room="r1", exp=NOW)
OPS = Claims(sub="o", role="ops", room=None, exp=NOW)


@pytest.mark.parametrize(
    ("claims", "room", "streams", "expected"),
    [
        (HOST, None, None, ("r1", {"counters", "stock", "alerts", "comments"})),
        (HOST, "r1", ["counters"], ("r1", {"counters"})),
        (HOST, "r2", None, CloseCode.ROOM_FORBIDDEN),
        (VIEWER, None, None, ("r1", {"stock"})),
        (VIEWER, "r2", None, CloseCode.ROOM_FORBIDDEN),
        (VIEWER, None, ["stock", "alerts"], CloseCode.STREAM_FORBIDDEN),
        (VIEWER, None, ["counters"], CloseCode.STREAM_FORBIDDEN),
        (OPS, "r7", None, ("r7", {"counters", "stock", "alerts", "comments"})),
        (OPS, None, None, CloseCode.ROOM_FORBIDDEN),
        (HOST, None, ["secrets"], CloseCode.STREAM_FORBIDDEN),
    ],
)
def test_subscription_matrix(claims: Claims, room: str | None, streams: list[str] | None,
                             expected: tuple[str, set[str]] | CloseCode) -> None:
    if isinstance(expected, CloseCode):
        with pytest.raises(AuthError) as refused:
            authorize_subscription(claims, room, streams)
        assert refused.value.code == expected
    else:
        assert authorize_subscription(claims, room, streams) == (expected[0], frozenset(expected[1]))


def test_viewers_get_the_viewer_cut_and_ops_the_host_cut() -> None:
    assert (VIEWER.audience, HOST.audience, OPS.audience) == ("viewer", "host", "host")


def test_only_a_viewer_receives_order_results_and_only_its_own() -> None:
    assert VIEWER.order_results_of == ("r1", "v")
    assert HOST.order_results_of is None and OPS.order_results_of is None


def test_minting_refuses_a_room_less_host_or_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="needs a room"):
        mint_token(SECRET, sub="u", role="host", room=None, now_s=NOW)
    with pytest.raises(ValueError, match="role"):
        mint_token(SECRET, sub="u", role="admin", room="r", now_s=NOW)  # type: ignore[arg-type]
