"""Routing between the Chinese student and the English companion (sentiment/language.py, RoutedModel).

The route is a function of the comment's own normalised text: any letter of a non-Latin script
(Chinese, Japanese, Korean, Cyrillic, ...) keeps it with the student; ASCII letters without one send
it to the English model; text with no ASCII letter (``666``, punctuation) stays with the student.
The routed model must give every text the row its own model gives it alone, whatever else is in
the call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sentiment.language import reads_english
from sentiment.scorer import RoutedModel

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
LATIN = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
OTHER = st.sampled_from(" 0123456789!?.,~#@")


@given(st.text(OTHER), CJK, st.text(st.one_of(LATIN, OTHER, CJK)))
def test_a_text_with_a_chinese_character_stays_with_the_student(before: str, han: str, after: str) -> None:
    assert not reads_english(before + han + after)


@given(st.text(OTHER), LATIN, st.text(st.one_of(LATIN, OTHER)))
def test_latin_letters_without_chinese_go_to_the_english_model(before: str, letter: str, after: str) -> None:
    assert reads_english(before + letter + after)


@given(st.text(OTHER))
def test_text_without_letters_stays_with_the_student(text: str) -> None:
    assert not reads_english(text)


#: Letters of scripts neither model is routed English for: Han (basic and extension B), kana, hangul
#: syllables and jamo, bopomofo, 々 〆 〇, Cyrillic, Greek, Thai, Arabic.
OTHER_SCRIPTS = st.sampled_from("好𠮷かカ한ᄏㄏ々〆〇жΩกع")


@given(st.text(st.one_of(LATIN, OTHER)), OTHER_SCRIPTS, st.text(st.one_of(LATIN, OTHER)))
def test_a_letter_of_another_script_keeps_a_text_with_the_student(before: str, letter: str, after: str) -> None:
    assert not reads_english(before + letter + after)


def test_the_usual_cases() -> None:
    assert reads_english("w host fire fire fire")
    assert reads_english("mid tbh")
    assert reads_english("café was great")  # accented Latin is Latin
    assert not reads_english("主播yyds")
    assert not reads_english("666")
    assert not reads_english("かわいい")
    assert not reads_english("привет bad")
    assert not reads_english("ñ")  # no ASCII letter


class _Fixed:
    """A stand-in Model whose row for a text depends on that text alone (its length and a tag)."""

    def __init__(self, tag: float) -> None:
        self.name = f"fixed-{tag}"
        self.tag = tag
        self.calls: list[list[str]] = []

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[self.tag, float(len(t)), 1.0] for t in texts], dtype=np.float64).reshape(-1, 3)


@given(st.lists(st.text(st.one_of(LATIN, OTHER, CJK), max_size=8), max_size=20))
def test_each_text_gets_its_own_models_row_in_its_own_place(texts: list[str]) -> None:
    chinese, english = _Fixed(0.0), _Fixed(1.0)
    got = RoutedModel(chinese, english).probabilities(texts)
    assert got.shape == (len(texts), 3)
    for text, row in zip(texts, got, strict=True):
        expected = (english if reads_english(text) else chinese).probabilities([text])[0]
        assert np.array_equal(row, expected)


def test_a_call_runs_each_model_once_on_its_texts_only() -> None:
    chinese, english = _Fixed(0.0), _Fixed(1.0)
    RoutedModel(chinese, english).probabilities(["好看", "so cute", "666", "mid"])
    assert chinese.calls == [["好看", "666"]]
    assert english.calls == [["so cute", "mid"]]
    RoutedModel(chinese, english).probabilities(["好看"])
    assert english.calls == [["so cute", "mid"]]  # no English text: the English model is not run
