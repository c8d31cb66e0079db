"""Text normalisation: idempotent, folds full-width forms, caps repeats, turns emoji into words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sentiment.normalize import MAX_CHARS, MAX_REPEAT, emoji_to_words, normalize, squeeze_repeats

chat_text = st.text(
    alphabet=st.sampled_from(list("哈哈来了666好!！ ａｂＡlovehaLOVE🔥❤️👍😡\u200d\ufe0f \t\n.")) | st.characters(),
    max_size=300,
)


@given(chat_text)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(chat_text)
def test_normalized_text_is_bounded_trimmed_and_lower_case(text: str) -> None:
    out = normalize(text)
    assert len(out) <= MAX_CHARS
    assert out == out.strip()
    assert "  " not in out
    assert out == out.lower() or not out.isascii()


@given(st.sampled_from(list("哈6!a来")), st.integers(min_value=MAX_REPEAT + 1, max_value=50))
def test_runs_of_one_character_are_capped(ch: str, n: int) -> None:
    assert squeeze_repeats(ch * n) == ch * MAX_REPEAT


@given(st.sampled_from(["ha", "哈哈", "6a", "xd"]), st.integers(min_value=MAX_REPEAT + 1, max_value=30))
def test_runs_of_two_character_units_are_capped(unit: str, n: int) -> None:
    out = squeeze_repeats(unit * n)
    assert len(out) <= len(unit) * MAX_REPEAT
    assert set(out) <= set(unit)


@given(st.integers(min_value=0, max_value=MAX_REPEAT))
def test_short_runs_are_kept(n: int) -> None:
    assert squeeze_repeats("好" * n) == "好" * n


def test_chat_repeats_collapse_to_one_cache_key() -> None:
    assert normalize("哈哈哈哈哈哈哈") == normalize("哈哈哈哈") == "哈哈哈"
    assert normalize("66666666") == normalize("6666") == "666"
    assert normalize("hahahahaha") == normalize("hahahaha")


def test_full_width_forms_fold_to_ascii_lower_case() -> None:
    assert normalize("ＬＯＶＥ　ＩＴ！") == "love it!"


def test_emoji_become_words_and_joiners_disappear() -> None:
    assert normalize("主播yyds🔥") == "主播yyds fire"
    assert normalize("👍🏻") == "thumbs up"
    assert normalize("❤️") == "love"
    assert emoji_to_words("plain ascii") == "plain ascii"
    assert "\u200d" not in normalize("👩\u200d💻")


def test_emoji_without_a_chosen_word_use_their_unicode_name() -> None:
    assert normalize("🍎") == "red apple"


def test_repeated_emoji_are_capped_like_repeated_words() -> None:
    assert normalize("🔥" * 9) == "fire fire fire"


@given(st.text(), st.sampled_from(["\ud800", "\udfff", "\udcff", "\ufffd"]), st.text())
def test_lone_surrogates_and_replacement_characters_never_reach_the_tokenizer(
    before: str, bad: str, after: str,
) -> None:
    """Undecodable input (read with surrogateescape, or U+FFFD from errors="replace") is dropped: the
    tokenizer rejects a lone surrogate, which would fail every comment of its model run."""
    out = normalize(before + bad + after)
    assert not any(0xD800 <= ord(c) <= 0xDFFF or c == "\ufffd" for c in out)
    out.encode("utf-8")  # encodable: the tokenizer and the JSON encoders take it
