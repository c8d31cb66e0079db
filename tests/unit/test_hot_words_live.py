"""Live hot words: the words of chat (jieba for Chinese, simple tokens for English, a stop list) and
the sliding one-minute window per room, checked against a brute-force count."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.words import STOPWORDS, tokenize
from streams.counters.hotwords import HotWords

T0 = 1_767_225_600_000


def test_chinese_is_cut_into_words_and_single_characters_dropped() -> None:
    words = list(tokenize("这个口红太好看了"))
    assert "口红" in words and "好看" in words
    assert all(len(w) >= 2 for w in words)
    assert "这个" not in words  # a stop word


def test_english_is_lower_cased_simple_words_without_stop_words() -> None:
    assert list(tokenize("Love the Lipstick, it's GREAT!!")) == ["love", "lipstick", "great"]
    assert list(tokenize("don't stop")) == ["don't", "stop"]


def test_slang_numbers_and_emoji_are_words_punctuation_is_not() -> None:
    assert list(tokenize("yyds 666 🔥🔥 ！！ ...")) == ["yyds", "666", "🔥", "🔥"]
    assert list(tokenize("冲冲冲 yyds绝绝子")) == [*tokenize("冲冲冲"), "yyds", *tokenize("绝绝子")]


def test_full_width_and_mixed_scripts() -> None:
    words = list(tokenize("主播的羽绒服XL有吗 size XL"))
    assert "羽绒服" in words and words.count("xl") == 2
    assert not set(words) & STOPWORDS


def test_window_keeps_the_last_minute_of_event_time() -> None:
    hot = HotWords(window_ms=60_000, bucket_ms=5_000)
    hot.add("r", "口红 口红 yyds", T0)
    hot.add("r", "yyds", T0 + 30_000)
    assert hot.top("r")[:2] == [("yyds", 2), ("口红", 2)]  # ties by word
    hot.add("r", "sneakers", T0 + 65_000)  # the first bucket [T0, T0+5s) leaves the window
    assert dict(hot.top("r")) == {"yyds": 1, "sneakers": 1}
    assert not hot.add("r", "late 口红", T0 + 1_000)  # older than the window: not counted
    hot.advance("r", T0 + 200_000)
    assert hot.top("r") == []
    assert hot.top("unknown-room") == []


def test_rooms_are_separate() -> None:
    hot = HotWords()
    hot.add("a", "口红", T0)
    hot.add("b", "羽绒服", T0)
    assert hot.top("a") == [("口红", 1)] and hot.top("b") == [("羽绒服", 1)]


def test_window_must_be_whole_buckets() -> None:
    with pytest.raises(ValueError):
        HotWords(window_ms=60_000, bucket_ms=7_000)


TEXTS = ["口红好看", "yyds", "666 🔥", "love it", "羽绒服 XL", "冲冲冲", "太香了", "sold out again 😭", "hello hello"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TEXTS), st.integers(0, 180_000)), max_size=60),
       st.sampled_from([(60_000, 5_000), (10_000, 1_000), (30_000, 30_000)]))
def test_top_words_equal_a_brute_force_count_of_the_window(
    comments: list[tuple[str, int]], shape: tuple[int, int]
) -> None:
    window, bucket = shape
    hot = HotWords(window_ms=window, bucket_ms=bucket)
    counted: list[tuple[str, int]] = []
    newest = -1
    for text, offset in comments:
        ts = T0 + offset
        newest = max(newest, ts)
        start = newest - newest % bucket + bucket - window
        assert hot.add("r", text, ts) == (ts >= start)
        if ts >= start:
            counted.append((text, ts))
        start = newest - newest % bucket + bucket - window
        expected: Counter[str] = Counter()
        for t, when in counted:
            if when >= start:
                expected.update(tokenize(t))
        assert hot.top("r", 100) == sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
