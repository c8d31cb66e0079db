"""A comment's score does not depend on the other comments of its batch (static int8, masked padding).

Why it matters: the agent batches whatever arrived together, and a replay after a crash batches
differently; with dynamic int8 a replayed comment could change its label.  Checked on the
committed model: each text alone, then inside batches of different neighbours and lengths.
"""

from __future__ import annotations

import random

import pytest

pytest.importorskip("onnxruntime")

from sentiment.normalize import normalize
from sentiment.scorer import Model, SentimentScorer, load_model, to_sentiments

TEXTS = [
    "好漂亮啊，马上去拍！", "收到了，特别满意", "物流三天没动", "打卡", "W host", "来了", "退钱",
    "thanks for the 0.2 seconds of hope", "the white one faded after 1 wash", "主播yyds🔥🔥🔥",
    "这个价格是认真的吗？？又割韭菜", "how much is shipping to Canada?", "质量一般般吧，没有想象中好",
    "omg this is so cute I need it", "2号链接有没有M码", "尺码偏小 建议拍大一码", "mid tbh",
]
FILLERS = [
    "家人们冲冲冲", "什么时候开始", "this is a scam", "哈哈哈哈哈哈", "666", "啊啊啊啊太好看了吧我要买十件",
    "when does the sale start? I have been waiting for an hour already and nothing happened",
    "客服一直不回消息，太差劲了，再也不买了，退货退款", "ok", "👍",
]


@pytest.fixture(scope="module")
def model() -> Model:
    """The committed model as the agent loads it (with its English companion when there is one)."""
    return load_model("onnx", threads=1)


def test_each_text_scores_the_same_alone_and_in_any_batch(model: Model) -> None:
    rng = random.Random(5)
    keys = [normalize(t) for t in TEXTS]
    alone = {k: to_sentiments(model.probabilities([k]))[0] for k in keys}
    worst = 0.0
    for trial in range(6):
        neighbours = [normalize(t) for t in rng.sample(FILLERS, k=1 + trial % len(FILLERS))]
        batch = keys + neighbours
        rng.shuffle(batch)
        for key, got in zip(batch, to_sentiments(model.probabilities(batch)), strict=True):
            if key in alone:
                assert got.label == alone[key].label, (key, got, alone[key])
                worst = max(worst, abs(got.score - alone[key].score))
    assert worst <= 0.01


def test_the_scorer_gives_a_cached_and_an_uncached_text_the_same_score(model: Model) -> None:
    first = SentimentScorer(model, cache_size=0, batch_size=4).score(TEXTS)
    second = SentimentScorer(model, cache_size=0, batch_size=64).score(list(reversed(TEXTS)))
    for a, b in zip(first, reversed(second), strict=True):
        assert a.label == b.label and abs(a.score - b.score) <= 0.01


def test_model_runs_side_by_side_give_each_text_its_score_alone(model: Model) -> None:
    """The agent's scorer runs single-threaded model runs side by side on one session."""
    alone = SentimentScorer(model, cache_size=0, batch_size=1).score(TEXTS)
    parallel = SentimentScorer(model, cache_size=0, batch_size=8, workers=2)
    try:
        together = parallel.score(TEXTS * 3)
    finally:
        parallel.close()
    for a, b in zip(alone * 3, together, strict=True):
        assert a.label == b.label and abs(a.score - b.score) <= 0.01
